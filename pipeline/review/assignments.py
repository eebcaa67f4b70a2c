"""What the owner does with listeners' queues: put calls in them (one writer, safe
against a second tab), follow each listener's progress, and handle urgent flags."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.review.review import ReviewError, dialect_insert
from pipeline.storage.store import (
    Assignment,
    Recording,
    Review,
    User,
    utcnow,
)
from pipeline.vocabulary import AssignmentStatus, RecordingStatus, Role


@dataclass
class AssignResult:
    created: int
    skipped: int  # already in that listener's queue
    per_listener: dict[str, int] = field(default_factory=dict)


def reviewable_recordings(session: Session, unassigned_only: bool = False) -> list[Recording]:
    """Aligned recordings, optionally only those in nobody's queue yet."""
    stmt = select(Recording).where(Recording.status == RecordingStatus.ALIGNED).order_by(Recording.id)
    if unassigned_only:
        stmt = stmt.where(~select(Assignment.id).where(Assignment.recording_id == Recording.id).exists())
    return list(session.scalars(stmt))


def add_assignment(session: Session, recording_id: int, listener_id: int, position: int, gold: bool = False,
                   drawn_at_random: bool = False) -> bool:
    """Put one recording in a listener's queue at ``position``; False if it is there already.
    The one writer of assignments: a concurrent owner tab cannot make a duplicate."""
    insert = dialect_insert(session)
    return session.execute(
        insert(Assignment)
        .values(recording_id=recording_id, listener_id=listener_id, position=position, is_gold=gold,
                drawn_at_random=drawn_at_random and not gold, status=AssignmentStatus.NEW, assigned_at=utcnow())
        .on_conflict_do_nothing(index_elements=["recording_id", "listener_id"])
        .returning(Assignment.id)
    ).scalar() is not None


def assign(session: Session, recording_ids: Sequence[int], listener_ids: Sequence[int], gold: bool = False,
           drawn_at_random: bool = False) -> AssignResult:
    """Put recordings into listeners' queues, dealt round-robin, appended in due order.

    With one listener every recording goes to them; a recording already in a
    listener's queue is skipped. ``drawn_at_random``: the recordings are a
    random draw (``sampling.sample_recordings``), not picked by hand."""
    listeners = {u.id: u for u in session.scalars(select(User).where(User.id.in_(listener_ids)))}
    for lid in listener_ids:
        user = listeners.get(lid)
        if user is None or user.role != Role.LISTENER:
            raise ReviewError(f"User {lid} is not a listener.")
    if not listener_ids:
        raise ReviewError("Choose at least one listener.")
    known = set(session.scalars(select(Recording.id).where(Recording.id.in_(list(recording_ids)))))
    unknown = [rid for rid in recording_ids if rid not in known]
    if unknown:
        raise ReviewError(f"No recording with id {', '.join(map(str, unknown))}; see `callreview status`.")
    next_pos = {
        lid: (session.scalar(select(func.max(Assignment.position)).where(Assignment.listener_id == lid)) or 0) + 1
        for lid in listener_ids
    }
    result = AssignResult(0, 0, defaultdict(int))
    for i, rid in enumerate(recording_ids):
        lid = listener_ids[i % len(listener_ids)]
        if add_assignment(session, rid, lid, next_pos[lid], gold, drawn_at_random):
            next_pos[lid] += 1
            result.created += 1
            result.per_listener[listeners[lid].name] += 1
        else:
            result.skipped += 1
    result.per_listener = dict(result.per_listener)
    return result


# --- owner: progress and urgent flags ----------------------------------------------


@dataclass
class ListenerProgress:
    listener_id: int
    name: str
    active: bool
    assigned: int
    new: int
    in_progress: int
    submitted: int
    urgent_open: int
    last_submitted_at: dt.datetime | None
    rate: float

    @property
    def earned(self) -> float:
        return self.submitted * self.rate


def listener_progress(session: Session) -> list[ListenerProgress]:
    """Per listener: queue size by status, open urgent flags, last submit, pay so far."""
    listeners = list(session.scalars(select(User).where(User.role == Role.LISTENER).order_by(User.name)))
    counts: dict[tuple[int, str], int] = {
        (lid, status): n
        for lid, status, n in session.execute(
            select(Assignment.listener_id, Assignment.status, func.count()).group_by(Assignment.listener_id, Assignment.status)
        ).all()
    }
    last = dict(
        session.execute(
            select(Assignment.listener_id, func.max(Review.submitted_at))
            .join(Review, Review.assignment_id == Assignment.id).group_by(Assignment.listener_id)
        ).all()
    )
    urgent = dict(
        session.execute(
            select(Assignment.listener_id, func.count())
            .join(Review, Review.assignment_id == Assignment.id)
            .where(Review.urgent.is_(True), Review.urgent_handled_at.is_(None))
            .group_by(Assignment.listener_id)
        ).all()
    )
    out = []
    for u in listeners:
        new, prog, sub = (counts.get((u.id, s), 0) for s in (AssignmentStatus.NEW, AssignmentStatus.IN_PROGRESS, AssignmentStatus.SUBMITTED))
        out.append(ListenerProgress(u.id, u.name, u.active, new + prog + sub, new, prog, sub, urgent.get(u.id, 0), last.get(u.id), u.rate))
    return out


@dataclass
class UrgentFlag:
    review_id: int
    recording_id: int
    original_name: str
    operator: str | None
    listener: str
    reason: str
    flagged_at: dt.datetime | None
    handled_at: dt.datetime | None
    review_status: str


def urgent_flags(session: Session, include_handled: bool = False) -> list[UrgentFlag]:
    """Calls a listener flagged "urgent: save this deal", newest first (owner only: names files and operators)."""
    stmt = (
        select(Review, Assignment, Recording, User)
        .join(Assignment, Assignment.id == Review.assignment_id)
        .join(Recording, Recording.id == Assignment.recording_id)
        .join(User, User.id == Assignment.listener_id)
        .where(Review.urgent.is_(True))
        .order_by(Review.urgent_at.desc())
    )
    if not include_handled:
        stmt = stmt.where(Review.urgent_handled_at.is_(None))
    return [
        UrgentFlag(r.id, rec.id, rec.original_name, rec.operator, u.name, r.urgent_reason or "", r.urgent_at,
                   r.urgent_handled_at, r.status)
        for r, _a, rec, u in session.execute(stmt).all()
    ]


def count_open_urgent(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(Review).where(Review.urgent.is_(True), Review.urgent_handled_at.is_(None))
    ) or 0


def mark_urgent_handled(session: Session, review_id: int) -> None:
    review = session.get(Review, review_id)
    if review is None:
        raise ReviewError(f"No review {review_id}.")
    review.urgent_handled_at = utcnow()
