"""Database edge: SQLAlchemy 2.0 typed models, engine/session helpers and
Alembic upgrades. SQLite by default, PostgreSQL through ``DATABASE_URL``.

Nothing here knows about Whisper or Streamlit; stages hand typed records in
and get typed records out.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
    func,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.types import TypeDecorator

from pipeline.script.result import AlignmentRecord
from pipeline.vocabulary import RecordingStatus, ReviewStatus

if TYPE_CHECKING:
    from alembic.config import Config

    from pipeline.speech.transcript import Transcript


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_utc(t: dt.datetime | None) -> dt.datetime | None:
    """An aware time in UTC; a naive one (SQLite, a CRM export) is taken to be UTC already."""
    if t is None:
        return None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp column that always reads back aware, in UTC: SQLite drops the zone
    that PostgreSQL keeps, and comparing naive with aware times raises."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # noqa: ANN001
        return as_utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # noqa: ANN001
        return as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="audio")  # audio | chat
    original_name: Mapped[str] = mapped_column(String(500))
    source_path: Mapped[str] = mapped_column(Text)
    listen_path: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[int | None] = mapped_column(Integer)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    operator_channel: Mapped[str] = mapped_column(String(5), default="left")
    operator: Mapped[str | None] = mapped_column(String(200), index=True)
    source_meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default=RecordingStatus.NEW, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    language: Mapped[str | None] = mapped_column(String(10))
    model: Mapped[str | None] = mapped_column(String(200))
    # the script an upload is to be aligned with, for the worker that picks it up (migration 0004)
    checklist_version_id: Mapped[int | None] = mapped_column(ForeignKey("checklist_versions.id", name="fk_recordings_checklist_version"))
    # Transcript.coverage as JSON: detected speech, the share of it that got words, the unheard stretches (0005)
    coverage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Transcript.speakers as JSON: how a mono call was split by voice, and which voice is the operator (0006)
    speakers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    utterances: Mapped[list["UtteranceRow"]] = relationship(
        back_populates="recording", order_by="UtteranceRow.idx", cascade="all, delete-orphan"
    )


class UtteranceRow(Base):
    __tablename__ = "utterances"
    __table_args__ = (UniqueConstraint("recording_id", "idx"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(20))
    channel: Mapped[int] = mapped_column(Integer, default=0)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    words: Mapped[list[Any]] = mapped_column(default=list)

    recording: Mapped[Recording] = relationship(back_populates="utterances")


class ProcessingRun(Base):
    """One attempt at one stage of one recording: the audit trail behind status."""

    __tablename__ = "processing_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20))  # transcribe | align
    worker: Mapped[str | None] = mapped_column(String(200))
    engine: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    seconds: Mapped[float | None] = mapped_column(Float)
    ok: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class ChecklistVersion(Base):
    """Each distinct script content, keyed by its sha256."""

    __tablename__ = "checklist_versions"
    __table_args__ = (UniqueConstraint("checklist_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checklist_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    content: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)



class DroppedExample(Base):
    """A learned example the owner struck out (``callreview checklists examples --drop``):
    later alignments with that script version no longer learn from it."""

    __tablename__ = "dropped_examples"

    id: Mapped[int] = mapped_column(primary_key=True)
    checklist_version_id: Mapped[int] = mapped_column(ForeignKey("checklist_versions.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[str] = mapped_column(String(200))  # a step id or OFF_SCRIPT
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

class AlignmentRow(Base):
    __tablename__ = "alignments"
    __table_args__ = (UniqueConstraint("recording_id", "checklist_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    checklist_version_id: Mapped[int] = mapped_column(ForeignKey("checklist_versions.id"), index=True)
    result: Mapped[dict[str, Any]] = mapped_column()  # AlignmentRecord.to_json(): read it through .record
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    checklist_version: Mapped[ChecklistVersion] = relationship()

    @property
    def record(self) -> AlignmentRecord:
        return AlignmentRecord.model_validate(self.result)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # owner | listener
    password_hash: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    rate: Mapped[float] = mapped_column(Float, default=0.0)  # pay per submitted review
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Wrong passwords in a row, and until when the next try is refused (accounts.authenticate).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LoginSession(Base):
    """One login (accounts.start_session): checked on every request, so ending it
    (logout, a new password, a disabled account) refuses its cookie and audio
    links at once. Only hashes are stored: a copy of the database logs nobody in."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # One-time ticket the login page exchanges for the cookie, and the cookie itself.
    ticket_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    ticket_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEvent(Base):
    """One entry of the audit log (``pipeline/review/audit.py``)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_address", "address", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200), default="")  # as typed, for a login with no such user
    action: Mapped[str] = mapped_column(String(20))  # AuditAction
    assignment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(String(500), default="")
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Assignment(Base):
    """A call in a listener's queue. Gold calls look like any other to the listener."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("recording_id", "listener_id"),
        Index("ix_assignments_listener_status", "listener_id", "status", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    listener_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # due order within the queue
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    # Drawn at random (not by priority or by hand): only these calls may
    # correct the machine's figures for all calls (reports.machine_steps_report).
    drawn_at_random: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(20), default="new")  # new | in_progress | submitted
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    recording: Mapped[Recording] = relationship()
    listener: Mapped[User] = relationship()


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    alignment_id: Mapped[int | None] = mapped_column(ForeignKey("alignments.id"))
    status: Mapped[str] = mapped_column(String(20), default=ReviewStatus.DRAFT)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent_reason: Mapped[str | None] = mapped_column(Text)
    urgent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # shown to the owner from then on
    urgent_handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Moves on with every change (review.review._draft_for_update): a page that
    # read an older one (a second tab) is refused instead of overwriting.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    assignment: Mapped[Assignment] = relationship()
    marks: Mapped[list["StepMark"]] = relationship(back_populates="review", cascade="all, delete-orphan")
    moments: Mapped[list["OffScriptMoment"]] = relationship(back_populates="review", cascade="all, delete-orphan")


class StepMark(Base):
    __tablename__ = "step_marks"
    __table_args__ = (UniqueConstraint("review_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[str] = mapped_column(String(200))
    mark: Mapped[str | None] = mapped_column(String(20))  # correct | incorrect | not_in_script | None (unmarked)
    comment: Mapped[str] = mapped_column(Text, default="")

    review: Mapped[Review] = relationship(back_populates="marks")


class OffScriptMoment(Base):
    """A situation the script does not cover, confirmed or added by a listener."""

    __tablename__ = "off_script_moments"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    utterance_idx: Mapped[int | None] = mapped_column(Integer)
    time: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")

    review: Mapped[Review] = relationship(back_populates="moments")


class BackupRow(Base):
    """A backup made with ``callreview backup`` (pipeline/storage/backups.py), for the owner's page."""

    __tablename__ = "backups"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    schema: Mapped[str] = mapped_column(String(64))
    reviews: Mapped[int] = mapped_column(Integer)


# --- engine and sessions ---------------------------------------------------


@lru_cache(maxsize=8)
def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (password hashes, names,
    customers' phones); SQLite gives its -wal and -shm files the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def get_engine(url: str) -> Engine:
    """One pooled engine per URL; SQLite gets WAL and a busy timeout so the
    app and a running batch can share the file."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def session_scope(url: str, write: bool = False) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error.

    ``write=True`` takes SQLite's write lock up front (BEGIN IMMEDIATE), so a
    read-then-write transaction cannot deadlock against another writer."""
    engine = get_engine(url)
    session = sessionmaker(engine, expire_on_commit=False)()
    try:
        if write and engine.dialect.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration of our migrations, for ``url`` if given."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    if url is not None:
        cfg.attributes["connection_url"] = url
    return cfg


def upgrade(url: str) -> None:
    """Bring the schema to the newest Alembic revision (creates it when empty)."""
    import logging

    # Alembic logs per plugin and revision at import and run: noise in CLI output.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command

    command.upgrade(alembic_config(url), "head")


_MIGRATING = threading.Lock()


def migrated(url: str) -> str:
    """``url``, upgraded to the newest schema once per process: the CLI commands,
    the review app's pages and its HTTP routes all open the database through it.
    One thread at a time: Alembic keeps its context in module globals, so the
    first requests of several listeners at once broke each other's upgrade."""
    with _MIGRATING:
        return _migrated_once(url)


@lru_cache(maxsize=None)
def _migrated_once(url: str) -> str:
    upgrade(url)
    return url


def count(session: Session, model: type[Base], **where: Any) -> int:
    from sqlalchemy import select

    stmt = select(func.count()).select_from(model)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return session.scalar(stmt) or 0


# --- typed records in and out ---------------------------------------------


def save_transcript(session: Session, recording: Recording, transcript: "Transcript") -> None:
    """Replace a recording's utterances with ``transcript``'s (same transaction)."""
    from dataclasses import asdict

    from sqlalchemy import delete

    session.execute(delete(UtteranceRow).where(UtteranceRow.recording_id == recording.id))
    for idx, u in enumerate(transcript.utterances):
        session.add(
            UtteranceRow(
                recording_id=recording.id,
                idx=idx,
                speaker=u.speaker,
                channel=u.channel,
                start=u.start,
                end=u.end,
                text=u.text,
                words=[asdict(w) for w in u.words],
            )
        )
    recording.language = transcript.language
    recording.model = transcript.model
    recording.coverage = transcript.to_dict()["coverage"]
    recording.speakers = transcript.speakers
    recording.duration = transcript.duration or recording.duration


def load_transcript(session: Session, recording_id: int) -> "Transcript":
    from sqlalchemy import select

    from pipeline.speech.transcript import Coverage, Transcript, Utterance, Word

    recording = session.get(Recording, recording_id)
    if recording is None:
        raise KeyError(f"no recording with id {recording_id}")
    rows = session.scalars(
        select(UtteranceRow).where(UtteranceRow.recording_id == recording_id).order_by(UtteranceRow.idx)
    )
    utterances = [
        Utterance(r.speaker, r.start, r.end, r.text, r.channel, [Word(**w) for w in r.words]) for r in rows
    ]
    coverage = Coverage.from_dict(recording.coverage) if recording.coverage else None
    return Transcript(utterances, recording.duration or 0.0, recording.language or "", recording.model or "", coverage, recording.speakers)


# --- owner reports (migration 0003_reports) ----------------------------------


class Outcome(Base):
    """One CRM row: what came of a call. Matched to a recording by id or file name."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_ref: Mapped[str] = mapped_column(String(500), unique=True)  # call id or file name as the CRM wrote it
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id", ondelete="SET NULL"), index=True)
    operator: Mapped[str | None] = mapped_column(String(200))
    time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(20))  # order | no_order | cancelled | other
    amount: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(500), default="")
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SituationMarker(Base):
    """The owner's "covered in script vN" mark on a group of not-in-script items.

    Groups are recomputed on every report, so the marker remembers the items
    it was set on; a later group that contains any of them inherits it."""

    __tablename__ = "situation_markers"

    id: Mapped[int] = mapped_column(primary_key=True)
    checklist_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text, default="")
    item_keys: Mapped[list[Any]] = mapped_column(default=list)  # ["mark:12", "moment:3", ...]
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
