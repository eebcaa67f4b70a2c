"""Accounts: owners and listeners, argon2 password hashes, server-side login sessions.

Used by ``callreview users ...``, the owner's users page and the login page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass, replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.errors import CallreviewError
from pipeline.review import audit
from pipeline.storage.store import LoginSession, User, as_utc, utcnow
from pipeline.vocabulary import AuditAction, Role

log = logging.getLogger(__name__)

_hasher = PasswordHasher()


class AccountError(CallreviewError):
    """A user cannot be created or changed (duplicate name, bad role, short password)."""


@dataclass(frozen=True)
class CurrentUser:
    """What a page needs to know about who is logged in."""

    id: int
    name: str
    role: str
    session_id: int | None = None  # the login (LoginSession) this page runs under

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# An owner's account opens every call and every customer's phone: a longer password.
MIN_PASSWORD = {Role.OWNER: 10, Role.LISTENER: 8}
# The first passwords any guesser tries (the most common ones in public leak lists).
COMMON_PASSWORDS = frozenset({
    "password", "password1", "passw0rd", "123456", "1234567", "12345678", "123456789", "1234567890", "0123456789",
    "111111", "000000", "00000000", "11111111", "qwerty", "qwerty123", "qwertyuiop", "1q2w3e4r", "1qaz2wsx", "zaq12wsx",
    "abc123", "abcd1234", "admin", "admin123", "administrator", "iloveyou", "welcome", "letmein", "monkey", "dragon",
    "sunshine", "football", "пароль", "йцукен", "йцукенгшщз", "qwerty12345", "secret", "changeme",
})


def _check(name: str, role: str, password: str) -> str:
    name = name.strip()
    if not name:
        raise AccountError("The user name is empty.")
    if role not in tuple(Role):
        raise AccountError(f"Unknown role {role!r}: use one of {', '.join(Role)}.")
    if len(password) < MIN_PASSWORD[Role(role)]:
        raise AccountError(f"The password for {name!r} is too short: use at least {MIN_PASSWORD[Role(role)]} characters.")
    if name.lower() in password.lower():
        raise AccountError(f"The password for {name!r} contains the user name.")
    if password.lower() in COMMON_PASSWORDS:
        raise AccountError(f"The password for {name!r} is one of the most common ones.")
    return name


def add_user(session: Session, name: str, role: str, password: str, rate: float = 0.0) -> User:
    """Create a user; ``AccountError`` if the name is taken."""
    name = _check(name, role, password)
    if session.scalar(select(User.id).where(func.lower(User.name) == name.lower())) is not None:
        raise AccountError(f"A user named {name!r} already exists.")
    user = User(name=name, role=role, password_hash=hash_password(password), rate=rate)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AccountError(f"A user named {name!r} already exists.") from exc
    return user


def list_users(session: Session, role: str | None = None) -> list[User]:
    stmt = select(User).order_by(User.role, User.name)
    if role:
        stmt = stmt.where(User.role == role)
    return list(session.scalars(stmt))


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(func.lower(User.name) == name.strip().lower()))
    if user is None:
        raise AccountError(f"No user named {name!r}.")
    return user


def set_password(session: Session, user_id: int, password: str) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(f"No user with id {user_id}.")
    _check(user.name, user.role, password)
    user.password_hash = hash_password(password)
    _end_sessions_of(session, user_id)  # whoever knew the old password is logged out


def unlock(session: Session, user_id: int) -> None:
    """The owner lifts a login lock at once (and the count of wrong passwords)."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(f"No user with id {user_id}.")
    user.failed_logins, user.locked_until = 0, None


def set_active(session: Session, user_id: int, active: bool) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(f"No user with id {user_id}.")
    user.active = active
    if not active:
        _end_sessions_of(session, user_id)


DELAY_AFTER = 5  # wrong passwords in a row before each next try must wait
MAX_DELAY_S = 60  # the wait doubles from 1 s up to this
LOCK_AFTER = 20  # then the account is locked
LOCK_S = 15 * 60  # for this long, or until the owner unlocks it
# Per client address, counting the failures of the last hour: looser, since an
# office behind one address holds several listeners, but it stops one guesser
# trying a password or two on every account. With the waits above, the lock
# comes after about 15 minutes of guessing.
ADDRESS_WINDOW_S = 3600
ADDRESS_DELAY_AFTER = 10
ADDRESS_LOCK_AFTER = 30


class LoginLocked(AccountError):
    """Too many wrong passwords: this account or address refuses every try for a while."""


def _wait(n: int, delay_after: int, lock_after: int) -> float:
    """Seconds the next try must wait after the ``n``-th failure in a row."""
    if n >= lock_after:
        return LOCK_S
    return min(MAX_DELAY_S, 2 ** (n - delay_after)) if n >= delay_after else 0.0


def _address_locked_until(session: Session, address: str | None, now: dt.datetime) -> dt.datetime | None:
    if not address:
        return None
    n, last = audit.failures_from(session, address, since=now - dt.timedelta(seconds=ADDRESS_WINDOW_S))
    wait = _wait(n, ADDRESS_DELAY_AFTER, ADDRESS_LOCK_AFTER)
    return last + dt.timedelta(seconds=wait) if last is not None and wait else None


def authenticate(session: Session, name: str, password: str, now: dt.datetime | None = None,
                 address: str | None = None) -> CurrentUser | None:
    """The user if the name and password match an active account, else None.

    Guessing is throttled per account and per client ``address``: after
    ``DELAY_AFTER`` wrong passwords in a row each try waits longer (1, 2, 4 ...
    ``MAX_DELAY_S`` s), after ``LOCK_AFTER`` the account is locked for
    ``LOCK_S``; an address gets the same after ``ADDRESS_DELAY_AFTER`` and
    ``ADDRESS_LOCK_AFTER`` failures within ``ADDRESS_WINDOW_S``. A try while either waits
    raises ``LoginLocked`` without checking the password. Every try goes to the
    audit log; a right password resets the account's count."""
    now = now or utcnow()
    user = session.scalar(select(User).where(func.lower(User.name) == name.strip().lower()))
    uid = user.id if user is not None else None
    until = max((t for t in (user and as_utc(user.locked_until), _address_locked_until(session, address, now)) if t),
                default=None)
    if until is not None and until > now:
        log.warning("login refused for %r from %s: locked until %s", name, address or "localhost", until)
        audit.record(session, AuditAction.LOGIN_REFUSED, user_id=uid, name=name, address=address, at=now)
        session.commit()  # the refusal stays in the log although the caller's transaction fails
        raise LoginLocked(f"Too many wrong passwords for {name!r}: try again later or ask the owner to unlock it.")
    if user is None or not user.active or not verify_password(user.password_hash, password):
        if user is None or not user.active:
            # Spend the same time as a real check so names cannot be probed by timing.
            verify_password(_DUMMY_HASH, password)
        else:
            user.failed_logins = (user.failed_logins or 0) + 1
            wait = _wait(user.failed_logins, DELAY_AFTER, LOCK_AFTER)
            user.locked_until = now + dt.timedelta(seconds=wait) if wait else None
        log.warning("failed login for %r from %s", name, address or "localhost")
        audit.record(session, AuditAction.LOGIN_FAILED, user_id=uid, name=name, address=address, at=now)
        return None
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(session, AuditAction.LOGIN, user_id=uid, address=address, at=now)
    return CurrentUser(user.id, user.name, user.role)


_DUMMY_HASH = _hasher.hash("not a real password")


SESSION_TTL = dt.timedelta(days=14)  # a login lasts this long unless ended sooner
TICKET_TTL = dt.timedelta(seconds=60)  # the login page redeems its ticket at once


def _digest(secret_value: str) -> str:
    return hashlib.sha256(secret_value.encode("utf-8")).hexdigest()


def start_session(session: Session, user: CurrentUser, now: dt.datetime | None = None) -> tuple[CurrentUser, str]:
    """A new login for ``user`` (just authenticated): the user bound to it, and a
    one-time ticket the page hands to ``/api/session`` to get the cookie. The
    ticket is the only secret the page ever sees; it is dead once redeemed or
    after ``TICKET_TTL``."""
    now = now or utcnow()
    ticket = secrets.token_urlsafe(32)
    row = LoginSession(user_id=user.id, ticket_hash=_digest(ticket), ticket_expires_at=now + TICKET_TTL,
                       created_at=now, expires_at=now + SESSION_TTL)
    session.add(row)
    session.flush()
    return replace(user, session_id=row.id), ticket


def redeem_ticket(session: Session, ticket: str, now: dt.datetime | None = None) -> str | None:
    """The cookie value for a live login's unused ticket (once), else None.
    Made here, on the server, so it never travels in the page or its websocket."""
    now = now or utcnow()
    row = session.scalar(select(LoginSession).where(LoginSession.ticket_hash == _digest(ticket)))
    if row is None or as_utc(row.ticket_expires_at) < now or _live_user(session, row, now) is None:
        return None
    token = secrets.token_urlsafe(32)
    row.ticket_hash, row.ticket_expires_at, row.token_hash = None, None, _digest(token)
    return token


def _live_user(session: Session, row: LoginSession | None, now: dt.datetime) -> CurrentUser | None:
    if row is None or row.ended_at is not None or as_utc(row.expires_at) < now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return CurrentUser(user.id, user.name, user.role, row.id)


def session_user(session: Session, session_id: int | None, now: dt.datetime | None = None) -> CurrentUser | None:
    """The user of a live login, else None (ended, expired, or the account disabled).
    Pages ask on every run, the audio route on every request."""
    if session_id is None:
        return None
    return _live_user(session, session.get(LoginSession, session_id), now or utcnow())


def cookie_user(session: Session, token: str, now: dt.datetime | None = None) -> CurrentUser | None:
    """The user a login cookie belongs to, while its login is live."""
    if not token or not isinstance(token, str):  # AppTest's cookie jar is not a dict of str
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _digest(token)))
    return _live_user(session, row, now or utcnow())


def end_session(session: Session, session_id: int | None) -> None:
    """Logout: this login's cookie and audio links stop working at once."""
    row = session.get(LoginSession, session_id) if session_id is not None else None
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        audit.record(session, AuditAction.LOGOUT, user_id=row.user_id)


def _end_sessions_of(session: Session, user_id: int) -> None:
    session.execute(update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
                    .values(ended_at=utcnow()))
