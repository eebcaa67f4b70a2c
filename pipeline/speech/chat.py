"""Online-consultant chat logs as transcripts, so chats go through the same alignment.

A chat log is CSV (header row) or JSON (a list of messages, or
``{"messages": [...]}``), each message with a time, an author and a text.
Column names are matched loosely (time/timestamp/date/время, author/from/
sender/автор, text/message/сообщение, optional role/speaker/роль).

Who is the operator: an explicit role column wins; then ``operator=`` (the
author name given by the caller); then author names that say it
("Оператор", "Консультант", "Manager"...). Anything else is "client" when the
operator is known, "unknown" otherwise (the aligner then considers everyone).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.speech.transcript import CLIENT, OPERATOR, UNKNOWN, Transcript, Utterance

TIME_KEYS = ("time", "timestamp", "date", "datetime", "created_at", "ts", "время", "дата")
AUTHOR_KEYS = ("author", "from", "sender", "user", "name", "автор", "отправитель")
TEXT_KEYS = ("text", "message", "body", "content", "сообщение", "текст")
ROLE_KEYS = ("role", "speaker", "side", "роль")

_OPERATOR_WORDS = re.compile(
    r"оператор|консультант|менеджер|продав|магазин|поддержк|operator|agent|consultant|manager|support|shop|staff",
    re.IGNORECASE,
)
_CLIENT_WORDS = re.compile(r"клиент|покупател|посетител|гость|client|customer|visitor|guest|user", re.IGNORECASE)

# Reading speed for a message without a next one to end it.
SECONDS_PER_WORD = 0.4


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for key in keys:
        if key in lowered and lowered[key] not in (None, ""):
            return lowered[key]
    return None


def _parse_time(value: Any, where: str) -> float:
    """Seconds: a number, ``[HH:]MM:SS``, or an ISO date-time (made relative later)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text.replace(",", "."))
    except ValueError:
        pass
    m = re.fullmatch(r"(?:(\d{1,2}):)?(\d{1,2}):(\d{2}(?:[.,]\d+)?)", text)
    if m:
        h, mnt, sec = m.groups()
        return int(h or 0) * 3600 + int(mnt) * 60 + float(sec.replace(",", "."))
    for candidate in (text, text.replace(" ", "T", 1)):
        try:
            stamp = dt.datetime.fromisoformat(candidate.replace("Z", "+00:00"))
            return stamp.timestamp() if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            continue
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d/%m/%Y %H:%M:%S"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            continue
    raise InputError(f"{where}: cannot read the time {text!r}; use seconds, HH:MM:SS or an ISO date-time")


def _role(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in SPEAKERS_RU:
        return SPEAKERS_RU[text]
    if _OPERATOR_WORDS.search(text):
        return OPERATOR
    if _CLIENT_WORDS.search(text):
        return CLIENT
    return None


SPEAKERS_RU = {"operator": OPERATOR, "client": CLIENT, "unknown": UNKNOWN, "оператор": OPERATOR, "клиент": CLIENT}


def _rows(path: Path, text: str) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if isinstance(data, dict):
            data = data.get("messages")
        if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
            raise InputError(f"{path}: expected a list of messages with time, author and text")
        return data
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    rows = list(reader)
    last = (reader.fieldnames or [None])[-1]
    for row in rows:
        extra = row.pop(None, None)
        if extra and last is not None:
            # an unquoted delimiter inside the last column (the text, usually): glue it back
            row[last] = dialect.delimiter.join([row.get(last) or "", *extra])
    return rows


def parse_chat(text: str, source: str | Path = "<chat>", operator: str | None = None) -> Transcript:
    """Turn a chat log (CSV or JSON text) into a Transcript with relative times."""
    path = Path(str(source))
    rows = _rows(path, text)
    messages = []
    for n, row in enumerate(rows, 1):
        where = f"{path}, message {n}"
        body = _pick(row, TEXT_KEYS)
        when = _pick(row, TIME_KEYS)
        author = _pick(row, AUTHOR_KEYS)
        if body is None or not str(body).strip():
            continue  # system lines, attachments without text
        if when is None:
            raise InputError(f"{where}: no time; each message needs time, author and text columns")
        messages.append((_parse_time(when, where), str(author or "").strip(), _role(_pick(row, ROLE_KEYS)), str(body).strip()))
    if not messages:
        raise InputError(f"{path}: no messages with text found (columns needed: time, author, text)")
    messages.sort(key=lambda m: m[0])
    t0 = messages[0][0]

    def speaker(author: str, role: str | None) -> str:
        if role:
            return role
        if operator is not None:
            return OPERATOR if author.lower() == operator.strip().lower() else CLIENT
        return _role(author) or UNKNOWN

    speakers = [speaker(a, r) for _, a, r, _ in messages]
    if OPERATOR in speakers:
        speakers = [CLIENT if s == UNKNOWN else s for s in speakers]
    utterances = []
    for i, ((when, _, _, body), who) in enumerate(zip(messages, speakers)):
        start = when - t0
        typed = SECONDS_PER_WORD * max(1, len(body.split()))
        end = start + typed
        if i + 1 < len(messages):
            end = min(end, max(messages[i + 1][0] - t0, start))
        utterances.append(Utterance(speaker=who, start=round(start, 2), end=round(end, 2), text=body, channel=0 if who == OPERATOR else 1))
    duration = max(u.end for u in utterances)
    return Transcript(utterances=utterances, duration=round(duration, 2), language="ru", model="chat")


def load_chat(path: str | Path, operator: str | None = None) -> Transcript:
    """Read a chat log file (CSV or JSON with time, author, text)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the chat log ({exc}); save it as UTF-8 CSV or JSON") from None
    return parse_chat(text, path, operator=operator)


def is_chat_json(data: Any) -> bool:
    """A JSON chat log (as opposed to a transcript with ``utterances``)."""
    return isinstance(data, list) or (isinstance(data, dict) and "messages" in data and "utterances" not in data)
