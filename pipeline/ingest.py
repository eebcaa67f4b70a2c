"""The stored path: register recordings, then transcribe and align them into
the database, one recording per transaction so a killed batch loses nothing.

``process_paths`` is what ``callreview ingest``/``process``, the owner's upload
page and the parallel runners call. A recording is *claimed* atomically before
work starts (status ``processing`` plus the worker's name), so two runners never
do the same file, and a claim whose worker died is taken over.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select, update

from pipeline import store
from pipeline.audio import decode, file_sha256, make_listening_copy, probe
from pipeline.config import Settings
from pipeline.errors import CallreviewError
from pipeline.store import ALIGNED, FAILED, NEW, PROCESSING, TRANSCRIBED, Recording, session_scope

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".wav", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".mp4", ".aac", ".amr", ".flac", ".wma", ".webm"}
# A claim older than this is considered abandoned even if we cannot check its process.
CLAIM_LEASE_S = 30 * 60

Progress = Callable[[int, int, str], None]


@dataclass
class ProcessResult:
    path: str
    status: str  # done | skipped | duplicate | failed | busy
    recording_id: int | None = None
    message: str = ""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and audio files found under given folders, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            found.append(path)
    return found


def read_metadata(csv_path: Path | None) -> dict[str, dict[str, str]]:
    """Per-file source metadata keyed by file name; column ``file`` is required."""
    if csv_path is None:
        return {}
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "file" not in reader.fieldnames:
            raise CallreviewError(f"{csv_path}: the metadata CSV needs a 'file' column (found: {reader.fieldnames})")
        return {Path(row["file"]).name: {k: v for k, v in row.items() if k != "file" and v} for row in reader}


def register(
    settings: Settings,
    path: Path,
    operator: str | None = None,
    operator_channel: str | None = None,
    meta: dict[str, str] | None = None,
) -> tuple[int, bool]:
    """Store a recording row for ``path`` (deduplicated by content hash).

    Returns (recording id, created). A file that is not usable audio is stored
    as ``failed`` with the reason, so ``status`` can list it.
    """
    sha = file_sha256(path)
    meta = dict(meta or {})
    operator = operator or meta.pop("operator", None)
    with session_scope(settings.db_url) as session:
        existing = session.scalar(select(Recording).where(Recording.sha256 == sha))
        if existing is not None:
            return existing.id, False
        recording = Recording(
            sha256=sha,
            original_name=path.name,
            source_path=str(path.resolve()),
            operator=operator,
            operator_channel=operator_channel or settings.operator_channel,
            source_meta=meta,
            status=NEW,
        )
        try:
            info = probe(path, max_duration_s=settings.max_duration_s)
            recording.duration, recording.channels, recording.sample_rate = info.duration, info.channels, info.sample_rate
        except CallreviewError as exc:
            recording.status, recording.error = FAILED, str(exc)
        session.add(recording)
        session.flush()
        return recording.id, True


def _claimable():
    """SQL condition: nobody holds it, or the holder's lease has lapsed."""
    lapsed = store.utcnow() - dt.timedelta(seconds=CLAIM_LEASE_S)
    return or_(Recording.status != PROCESSING, Recording.claimed_at < lapsed)


def _holder_is_dead(claimed_by: str | None) -> bool:
    """A claim by a process on this host that no longer exists (e.g. SIGKILLed)."""
    if not claimed_by or ":" not in claimed_by:
        return False
    host, _, pid = claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(settings: Settings, recording_id: int, worker: str) -> bool:
    """Atomically mark a recording as ours; False when another live worker has it."""
    with session_scope(settings.db_url) as session:
        current = session.get(Recording, recording_id)
        if current is None:
            return False
        condition = _claimable()
        if current.status == PROCESSING and _holder_is_dead(current.claimed_by):
            condition = Recording.claimed_by == current.claimed_by
        result = session.execute(
            update(Recording)
            .where(Recording.id == recording_id, condition)
            .values(
                status=PROCESSING,
                claimed_by=worker,
                claimed_at=store.utcnow(),
                attempts=Recording.attempts + 1,
                error=None,
            )
        )
        return result.rowcount == 1


def _needs_work(settings: Settings, recording_id: int, checklist_sha: str | None) -> bool:
    with session_scope(settings.db_url) as session:
        rec = session.get(Recording, recording_id)
        if rec.status == ALIGNED and checklist_sha:
            return not _has_alignment(session, rec.id, checklist_sha)
        if rec.status == ALIGNED:
            return False
        if rec.status == TRANSCRIBED:
            return checklist_sha is not None
        return True


def _has_alignment(session, recording_id: int, checklist_sha: str) -> bool:
    from pipeline.store import AlignmentRow, ChecklistVersion

    return (
        session.scalar(
            select(AlignmentRow.id)
            .join(ChecklistVersion)
            .where(AlignmentRow.recording_id == recording_id, ChecklistVersion.sha256 == checklist_sha)
        )
        is not None
    )


def _finish_run(session, recording_id: int, stage: str, worker: str, started: float, error: str | None, settings: Settings) -> None:
    session.add(
        store.ProcessingRun(
            recording_id=recording_id,
            stage=stage,
            worker=worker,
            engine=settings.engine,
            model=settings.model,
            started_at=store.utcnow(),
            finished_at=store.utcnow(),
            seconds=time.perf_counter() - started,
            ok=error is None,
            error=error,
        )
    )


def process_one(settings: Settings, recording_id: int, checklist=None, worker: str | None = None) -> ProcessResult:
    """Transcribe (if not yet) and align (if a checklist is given) one claimed recording."""
    from pipeline.transcribe import TranscribeOptions, get_transcriber

    worker = worker or worker_name()
    with session_scope(settings.db_url) as session:
        rec = session.get(Recording, recording_id)
        path, name, transcribed = Path(rec.source_path), rec.original_name, rec.model is not None
        operator_channel, sha = rec.operator_channel, rec.sha256
    stage, started = "transcribe", time.perf_counter()
    try:
        if not transcribed:
            audio = decode(path, operator_channel=operator_channel, max_duration_s=settings.max_duration_s)
            transcript = get_transcriber(TranscribeOptions.from_settings(settings)).transcribe(audio)
            listen_path = make_listening_copy(path, settings.audio_dir / f"{sha}.ogg")
            with session_scope(settings.db_url) as session:
                rec = session.get(Recording, recording_id)
                store.save_transcript(session, rec, transcript)
                rec.duration, rec.channels = audio.info.duration, audio.info.channels
                rec.sample_rate, rec.listen_path = audio.info.sample_rate, str(listen_path.resolve())
                rec.status = TRANSCRIBED
                rec.claimed_by = worker if checklist is not None else None
                _finish_run(session, recording_id, stage, worker, started, None, settings)
        if checklist is not None:
            stage, started = "align", time.perf_counter()
            align_stored(settings, recording_id, checklist, worker, started)
        return ProcessResult(str(path), "done", recording_id)
    except Exception as exc:  # the batch goes on; the reason is stored and shown
        message = str(exc) if isinstance(exc, CallreviewError) else f"{name}: unexpected {type(exc).__name__}: {exc}"
        if not isinstance(exc, CallreviewError):
            log.exception("processing %s failed", name)
        with session_scope(settings.db_url) as session:
            rec = session.get(Recording, recording_id)
            rec.status, rec.error, rec.claimed_by = FAILED, message, None
            _finish_run(session, recording_id, stage, worker, started, message, settings)
        return ProcessResult(str(path), "failed", recording_id, message)


def align_stored(settings: Settings, recording_id: int, checklist, worker: str, started: float) -> None:
    """Align a stored transcript with ``checklist`` and store the result (replacing an older one for the same version)."""
    from pipeline.align import align, analysis_json, store_checklist_version
    from pipeline.store import AlignmentRow

    with session_scope(settings.db_url) as session:
        rec = session.get(Recording, recording_id)
        transcript = store.load_transcript(session, recording_id)
        version = store_checklist_version(session, checklist)
        result = analysis_json(rec.original_name, transcript, checklist, align(transcript, checklist))
        row = session.scalar(
            select(AlignmentRow).where(
                AlignmentRow.recording_id == recording_id, AlignmentRow.checklist_version_id == version.id
            )
        )
        if row is None:
            session.add(AlignmentRow(recording_id=recording_id, checklist_version_id=version.id, result=result))
        else:
            row.result = result
        rec.status, rec.claimed_by = ALIGNED, None
        _finish_run(session, recording_id, "align", worker, started, None, settings)


def iter_process(
    paths: Iterable[str | Path],
    settings: Settings,
    checklist_path: Path | None = None,
    operator: str | None = None,
    operator_channel: str | None = None,
    metadata_csv: Path | None = None,
) -> Iterator[ProcessResult]:
    """Register then process each file, yielding one result per input file."""
    checklist = None
    if checklist_path is not None:
        from pipeline.checklist import load_checklist

        checklist = load_checklist(checklist_path)
    metadata = read_metadata(metadata_csv)
    store.upgrade(settings.db_url)
    worker = worker_name()
    seen: set[int] = set()
    for path in expand_paths(paths):
        if not path.is_file():
            yield ProcessResult(str(path), "failed", None, f"{path}: no such file")
            continue
        try:
            recording_id, _ = register(settings, path, operator, operator_channel, metadata.get(path.name))
        except (CallreviewError, OSError) as exc:
            yield ProcessResult(str(path), "failed", None, str(exc))
            continue
        if recording_id in seen:
            yield ProcessResult(str(path), "duplicate", recording_id, f"{path.name}: same audio as a file earlier in this batch")
            continue
        seen.add(recording_id)
        if not _needs_work(settings, recording_id, checklist.sha256 if checklist else None):
            yield ProcessResult(str(path), "skipped", recording_id, "already processed")
            continue
        if not claim(settings, recording_id, worker):
            yield ProcessResult(str(path), "busy", recording_id, "another worker is processing it")
            continue
        # A file that failed its probe at registration is retried here too:
        # decoding raises the same clear error if it is still bad.
        yield process_one(settings, recording_id, checklist, worker)


def process_paths(
    paths: Iterable[str | Path],
    settings: Settings,
    checklist_path: Path | None = None,
    operator: str | None = None,
    operator_channel: str | None = None,
    metadata_csv: Path | None = None,
    progress: Progress | None = None,
) -> list[ProcessResult]:
    """Process a batch; ``progress(done, total, file_name)`` is called after each file."""
    files = expand_paths(paths)
    results = []
    for result in iter_process(files, settings, checklist_path, operator, operator_channel, metadata_csv):
        results.append(result)
        if progress is not None:
            progress(len(results), len(files), Path(result.path).name)
    return results
