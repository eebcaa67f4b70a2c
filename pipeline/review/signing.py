"""HMAC-signed, expiring tokens for audio URLs.

A token is ``base64url(json payload) "." base64url(hmac-sha256)``. The payload
carries a purpose (``kind``), so a token signed for one use never serves
another, and an expiry time in Unix seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import CallreviewError


class SignatureError(CallreviewError):
    """A token was tampered with, has the wrong purpose, or has expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _unb64(text: str) -> bytes:
    """Strict: only the unpadded URL-safe alphabet, in the one spelling ``_b64``
    writes, so no second token (extra ``=``, other trailing bits) verifies."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


def load_secret(settings: Settings) -> bytes:
    """The HMAC key: ``Settings.secret_key`` if set, else ``data_dir/secret.key``,
    generated once (0600) so cookies survive restarts."""
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its key
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if not key:
        raise SignatureError(f"{path} is empty; delete it and restart to generate a new key.")
    return key.encode("utf-8")


def sign(kind: str, value: Any, secret: bytes, ttl_s: float, now: float | None = None) -> str:
    """A token for ``value`` (anything JSON) with purpose ``kind``, valid ``ttl_s`` seconds."""
    issued = time.time() if now is None else now
    payload = json.dumps({"k": kind, "v": value, "e": int(issued + ttl_s)}, separators=(",", ":")).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(token: str, kind: str, secret: bytes, now: float | None = None) -> Any:
    """The value inside a valid, unexpired ``kind`` token; ``SignatureError`` otherwise."""
    try:
        body, mac = token.split(".", 1)
        payload = _unb64(body)
        given = _unb64(mac)
    except (ValueError, TypeError) as exc:
        raise SignatureError("malformed token") from exc
    if not hmac.compare_digest(hmac.new(secret, payload, hashlib.sha256).digest(), given):
        raise SignatureError("bad signature")
    data = json.loads(payload)
    if data.get("k") != kind:
        raise SignatureError(f"token is for {data.get('k')!r}, not {kind!r}")
    if (time.time() if now is None else now) > data["e"]:
        raise SignatureError("token expired")
    return data["v"]


AUDIO = "audio"

# Bounded: a copied link dies half an hour after the call could have been
# played through (``audio_ttl``), and the route refuses it the moment its login ends.
AUDIO_TTL_S = 30 * 60  # how long a listening link outlives the call's own length


def audio_ttl(call_s: float) -> float:
    """How long a listening link lives: the call's length and half an hour more.
    The page re-signs a link only when it runs, so a listener who plays a long
    call through without touching the form must not have it die mid-play;
    logging out still ends the link at once (it is bound to the login)."""
    return AUDIO_TTL_S + max(0.0, call_s)


def audio_path(assignment_id: int, session_id: int | None, secret: bytes, call_s: float = 0.0, now: float | None = None) -> str:
    """Path (no host) of the signed listening-copy URL for one assignment, bound
    to the login that asked for it, valid ``audio_ttl(call_s)`` seconds.

    The token names the assignment, never the recording or its file."""
    return f"/api/audio/{sign(AUDIO, [assignment_id, session_id], secret, audio_ttl(call_s), now)}"
