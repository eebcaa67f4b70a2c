"""What every page needs: settings, the database URL, who is logged in, and
role checks. Pages import this; the pipeline never does.

    from review_app.session import current_user, db_url, require_role
    user = require_role(Role.OWNER)          # stops the page for anyone else
    with session_scope(db_url()) as s: ...
"""

from __future__ import annotations

import json
import urllib.parse

import streamlit as st

from pipeline.config import Settings
from pipeline.review import accounts, signing
from pipeline.review.accounts import CurrentUser
from pipeline.storage.store import migrated, session_scope
from review_app.routes import COOKIE

_USER = "cr_user"
_LOGGED_OUT = "cr_logged_out"
DEFAULT_ORIGIN = "http://127.0.0.1:8501"


def settings() -> Settings:
    """Settings from the environment (``CALLREVIEW_*``, ``DATABASE_URL``); cheap to build."""
    return Settings()


def db_url() -> str:
    """The database URL, migrated to the newest schema once per process."""
    return migrated(settings().db_url)


def secret() -> bytes:
    return signing.load_secret(settings())


def current_user() -> CurrentUser | None:
    """The logged-in user while their login is live: this tab's login, else the
    login cookie's. Asked of the database on every run, so a logout in another
    tab, a new password or a disabled account takes effect at the next click."""
    user = st.session_state.get(_USER)
    if user is not None:
        with session_scope(db_url()) as s:
            user = accounts.session_user(s, user.session_id)
        if user is None:
            st.session_state.pop(_USER, None)
        return user
    if st.session_state.get(_LOGGED_OUT):
        return None
    token = st.context.cookies.get(COOKIE) if st.context.cookies is not None else None
    if token:
        with session_scope(db_url()) as s:
            user = accounts.cookie_user(s, token)
        if user is not None:
            st.session_state[_USER] = user
    return user


def require_role(*roles: str) -> CurrentUser:
    """The current user if their role is one of ``roles``; otherwise the page stops."""
    user = current_user()
    if user is None or user.role not in roles:
        st.error("Нет доступа к этой странице.")
        st.stop()
    return user


def log_in(user: CurrentUser) -> None:
    """Start a server-side login for this tab; its one-time ticket is turned into
    an HttpOnly cookie by ``/api/session`` (``emit_cookie_script``)."""
    with session_scope(db_url()) as s:
        st.session_state[_USER], st.session_state["cr_ticket"] = accounts.start_session(s, user)
    st.session_state.pop(_LOGGED_OUT, None)


def emit_cookie_script() -> None:
    """Once after login: POST the ticket to /api/session, whose reply sets the cookie."""
    ticket = st.session_state.pop("cr_ticket", None)
    if ticket:
        st.html(
            f"<script>fetch('/api/session',{{method:'POST',body:{json.dumps(ticket)},credentials:'same-origin'}});</script>",
            unsafe_allow_javascript=True,
        )


def log_out() -> None:
    """End the login on the server at once (its cookie and audio links die with
    it), forget this tab's state, and have /api/logout delete the cookie."""
    user = st.session_state.get(_USER)
    if user is not None:
        with session_scope(db_url()) as s:
            accounts.end_session(s, user.session_id)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[_LOGGED_OUT] = True
    st.session_state["cr_clear_cookie"] = True


def emit_logout_script() -> None:
    if st.session_state.pop("cr_clear_cookie", None):
        st.html("<script>fetch('/api/logout',{method:'POST',credentials:'same-origin'});</script>",
                unsafe_allow_javascript=True)


def client_address() -> str | None:
    """The browser's address, for per-address login throttling and the audit log.
    A connection from this machine is the reverse proxy (README) or a local
    browser: then the ``X-Real-IP`` the proxy sets, if any."""
    address = st.context.ip_address
    if address is None and st.context.headers is not None:
        address = st.context.headers.get("X-Real-IP")
    return address if isinstance(address, str) else None


def origin() -> str:
    """Scheme and host the browser uses, for absolute audio URLs (``st.audio`` needs one)."""
    url = st.context.url
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return DEFAULT_ORIGIN


def fmt_time(seconds: float | None) -> str:
    """m:ss (or h:mm:ss) as listeners read times."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def parse_time(text: str) -> float:
    """'1:05', '65', '1:02:03' -> seconds; ValueError if unreadable."""
    parts = [float(p) for p in text.strip().split(":")]
    if not parts or len(parts) > 3 or any(p < 0 for p in parts):
        raise ValueError(text)
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total
