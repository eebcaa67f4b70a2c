"""The audit log: every login and failed login, and who opened, marked and
submitted which assignment, kept in the database for the owner. It answers a
listener who disputes their pay, shows an account being guessed, and counts
the failed logins per address that ``accounts.authenticate`` throttles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.storage.store import AuditEvent, User, as_utc, utcnow
from pipeline.vocabulary import AuditAction


def record(session: Session, action: AuditAction, *, user_id: int | None = None, name: str = "",
           assignment_id: int | None = None, detail: str = "", address: str | None = None,
           at: dt.datetime | None = None) -> None:
    """Add one event, in the caller's transaction: it is kept exactly when the act it records is."""
    session.add(AuditEvent(action=str(action), user_id=user_id, name=name[:200], assignment_id=assignment_id,
                           detail=detail[:500], address=address, at=at or utcnow()))


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    user: str  # the account's name, or the name typed at a failed login
    action: str
    assignment_id: int | None
    detail: str
    address: str | None


def recent(session: Session, limit: int = 500, user: str | None = None, actions: list[str] | None = None) -> list[Entry]:
    """The newest events first, optionally of one user (by name) and some actions."""
    name = func.coalesce(User.name, AuditEvent.name)
    stmt = select(AuditEvent, name).outerjoin(User, User.id == AuditEvent.user_id)
    if user:
        stmt = stmt.where(func.lower(name) == user.strip().lower())
    if actions:
        stmt = stmt.where(AuditEvent.action.in_(actions))
    rows = session.execute(stmt.order_by(AuditEvent.id.desc()).limit(limit)).all()
    return [Entry(e.at, n or "", e.action, e.assignment_id, e.detail, e.address) for e, n in rows]


def failures_from(session: Session, address: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Failed logins from one address since ``since``, and the time of the last one."""
    n, last = session.execute(
        select(func.count(), func.max(AuditEvent.at))
        .where(AuditEvent.address == address, AuditEvent.action == AuditAction.LOGIN_FAILED, AuditEvent.at >= since)
    ).one()
    return n, as_utc(last)
