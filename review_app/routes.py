"""HTTP routes mounted beside Streamlit (``st.App(routes=...)``): the signed
audio URL and the login cookie (set and cleared here, never by page script). Plain Starlette, no Streamlit session needed."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.config import Settings
from pipeline.review import accounts, review, signing
from pipeline.storage.store import migrated, session_scope

log = logging.getLogger(__name__)

COOKIE = "callreview_session"
_MEDIA_TYPES = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4"}


def _settings() -> Settings:
    return Settings()


async def audio(request: Request) -> Response:
    """The listening copy behind a signed, unexpired token whose login is still
    live, with Range support so the browser seeks ("play from here") without
    downloading the whole call."""
    settings = _settings()
    try:
        assignment_id, session_id = signing.verify(request.path_params["token"], signing.AUDIO, signing.load_secret(settings))
    except (signing.SignatureError, ValueError, TypeError):
        return PlainTextResponse("This audio link is invalid or has expired; reload the call page.", status_code=403)
    with session_scope(migrated(settings.db_url)) as session:
        user = accounts.session_user(session, session_id)
        path = review.listen_path_for(session, assignment_id, user.id) if user else None
    if user is None:
        return PlainTextResponse("This login has ended; log in again.", status_code=403)
    if not path or not Path(path).is_file():
        return PlainTextResponse("No listening copy for this call.", status_code=404)
    # No filename in the response: listeners must not learn the source file name.
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES.get(Path(path).suffix.lower(), "application/octet-stream"),
        headers={"Cache-Control": "no-store"},  # no copy of the call left in a listener's browser cache
        content_disposition_type="inline",
    )


def _cross_site(request: Request) -> bool:
    """A POST sent by another site's page (login CSRF, forced logout): its Origin
    is not this host, or the browser says so. A client without either header is
    not a browser acting for someone, and is let through."""
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
        return origin == "null" or urlsplit(origin).netloc != host
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


async def set_session(request: Request) -> Response:
    """Exchange the login page's one-time ticket for the login cookie, made here
    so the cookie's value never appears in the page or its websocket traffic."""
    if _cross_site(request):
        return PlainTextResponse("cross-site request refused", status_code=403)
    ticket = (await request.body()).decode("ascii", "replace").strip()
    with session_scope(migrated(_settings().db_url)) as session:
        token = accounts.redeem_ticket(session, ticket)
    if token is None:
        return PlainTextResponse("invalid login ticket", status_code=403)
    response = PlainTextResponse("ok")
    response.set_cookie(COOKIE, token, max_age=int(accounts.SESSION_TTL.total_seconds()), httponly=True,
                        samesite="strict", secure=_secure(request), path="/")
    return response


async def clear_session(request: Request) -> Response:
    """Logout: end the cookie's login on the server and delete the cookie."""
    if _cross_site(request):
        return PlainTextResponse("cross-site request refused", status_code=403)
    token = request.cookies.get(COOKIE)
    if token:
        with session_scope(migrated(_settings().db_url)) as session:
            user = accounts.cookie_user(session, token)
            accounts.end_session(session, user.session_id if user else None)
    response = PlainTextResponse("ok")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


HEADERS = {
    "X-Frame-Options": "DENY",  # no other site can frame the app and trick a click
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # signed audio URLs never leave in a Referer
}


class SecurityHeaders:
    """Pure ASGI middleware adding ``HEADERS`` to every HTTP response (the
    websocket passes untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


ROUTES = [
    Route("/api/audio/{token}", audio, methods=["GET", "HEAD"]),
    Route("/api/session", set_session, methods=["POST"]),
    Route("/api/logout", clear_session, methods=["POST"]),
]
