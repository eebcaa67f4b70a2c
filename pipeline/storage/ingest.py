"""The stored path: register recordings, then transcribe and align them into
the database, one recording per transaction so a killed batch loses nothing.

``plan`` registers a batch's files and yields the recordings that need work;
``work_on_many`` claims a group of them and processes it. The runner
(``pipeline/storage/runner.py``) drives both. A recording is *claimed*
atomically before work starts (status ``processing`` plus the worker's name),
so two runners never do the same file, and a claim whose worker
died is taken over: the dead worker's unfinished run is closed as abandoned, so
``processing_runs`` shows the retry.

Inputs are local paths or fsspec URLs (``s3://bucket/calls/a.wav``); a URL is
copied to a local temp file only for the time it is decoded.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from pipeline.config import Settings
from pipeline.errors import CallreviewError
from pipeline.script.analyze import is_text_input, load_input
from pipeline.speech.audio import make_listening_copy, probe
from pipeline.storage import store
from pipeline.storage.sources import Source, content_sha256, expand_paths, is_url, local_copy, source_name
from pipeline.storage.store import Recording, session_scope
from pipeline.vocabulary import FileResult, RecordingStatus

log = logging.getLogger(__name__)

# A claim older than this is considered abandoned even if we cannot check its process.
CLAIM_LEASE_S = 30 * 60

@dataclass
class ProcessResult:
    path: str
    status: FileResult
    recording_id: int | None = None
    message: str = ""


@dataclass
class Job:
    """A registered recording that still needs work, as handed to a runner."""

    path: str
    recording_id: int


def worker_name(address: str | None = None) -> str:
    """``host:pid``, plus the Dask worker address when there is one (so a claim
    held by a worker on another machine can be checked against the cluster)."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name} {address}" if address else name


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
    path: Source,
    operator: str | None = None,
    operator_channel: str | None = None,
    meta: dict[str, str] | None = None,
    checklist_version_id: int | None = None,
) -> tuple[int, bool]:
    """Store a recording row for ``path`` (deduplicated by content hash).

    Returns (recording id, created). A file that is not usable audio is stored
    as ``failed`` with the reason, so ``status`` can list it. A URL is hashed as
    it streams by and probed later, by the worker that decodes it.
    ``checklist_version_id`` is the script a watching worker aligns it with;
    given for a recording already stored, it replaces the earlier choice.
    """
    url = is_url(path)
    sha = content_sha256(path)
    meta = dict(meta or {})
    operator = operator or meta.pop("operator", None)
    with session_scope(settings.db_url) as session:
        existing = session.scalar(select(Recording).where(Recording.sha256 == sha))
        if existing is not None:
            if checklist_version_id is not None:
                existing.checklist_version_id = checklist_version_id
            return existing.id, False
        recording = Recording(
            sha256=sha,
            original_name=source_name(path),
            source_path=str(path) if url else str(Path(path).resolve()),
            operator=operator,
            operator_channel=operator_channel or settings.operator_channel,
            source_meta=meta,
            status=RecordingStatus.NEW,
            attempts=0,
            checklist_version_id=checklist_version_id,
        )
        if not url and is_text_input(path):  # a chat export: read now, so a bad one fails with its reason at once
            recording.kind = "chat"
            try:
                recording.duration = load_input(Path(path))[1].duration
            except CallreviewError as exc:
                recording.status, recording.error = RecordingStatus.FAILED, str(exc)
        elif not url:
            try:
                info = probe(path, max_duration_s=settings.max_duration_s)
                recording.duration, recording.channels, recording.sample_rate = info.duration, info.channels, info.sample_rate
            except CallreviewError as exc:
                recording.status, recording.error = RecordingStatus.FAILED, str(exc)
        session.add(recording)
        session.flush()
        return recording.id, True


def save_uploads(folder: Path, uploads: Iterable[tuple[str, bytes]]) -> list[Path]:
    """Write uploaded files under ``folder``, each in its own numbered folder so
    two files of one name never overwrite each other. The browser's name is
    only a hint: reduced to letters, digits, ``.``, ``-`` and ``_``, no leading
    dots ("..", ".bashrc"), at most 100 characters keeping the extension."""
    paths = []
    for i, (name, data) in enumerate(uploads, start=1):
        stem, dot, ext = re.sub(r"[^\w.\-]+", "_", Path(name.replace("\\", "/")).name).lstrip(".").rpartition(".")
        if not dot:
            stem, ext = ext, ""
        ext = ext[:10]
        safe = (stem[: 100 - len(ext) - 1] + ("." + ext if ext else "")) if stem else ("recording." + ext if ext else "recording")
        path = folder / f"{i:03d}" / safe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def register_uploads(settings: Settings, paths: list[Path], checklist=None, operator: str | None = None) -> list[ProcessResult]:
    """Register uploaded files for the watching worker, with the script to align
    them with. Only hash and probe happen here, so the upload page stays quick
    and Whisper never runs inside the web server."""
    from pipeline.storage.checklists import store_checklist_version

    version_id = None
    if checklist is not None:
        with session_scope(settings.db_url) as session:
            version_id = store_checklist_version(session, checklist).id
    results = []
    for path in paths:
        try:
            rid, created = register(settings, path, operator, None, None, version_id)
        except (CallreviewError, OSError) as exc:
            results.append(ProcessResult(str(path), FileResult.FAILED, None, f"{source_name(path)}: {exc}"))
            continue
        with session_scope(settings.db_url) as session:
            rec = session.get(Recording, rid)
            if rec.status == RecordingStatus.FAILED and created:
                results.append(ProcessResult(str(path), FileResult.FAILED, rid, rec.error or ""))
            elif created:
                results.append(ProcessResult(str(path), FileResult.REGISTERED, rid))
            else:
                results.append(ProcessResult(str(path), FileResult.DUPLICATE, rid, f"same audio as {rec.original_name}, stored before"))
    return results


@dataclass(frozen=True)
class UploadState:
    name: str
    status: str
    error: str | None
    created_at: dt.datetime


def recent_uploads(settings: Settings, limit: int = 50) -> list[UploadState]:
    """The newest recordings uploaded through the review app, as the worker has left them."""
    folder = str(Path(settings.data_dir, "uploads").resolve())
    with session_scope(settings.db_url) as session:
        rows = session.scalars(
            select(Recording).where(Recording.source_path.startswith(folder)).order_by(Recording.id.desc()).limit(limit)
        )
        return [UploadState(r.original_name, r.status, r.error, r.created_at) for r in rows]


# A call where less of the detected speech than this got words is flagged for the owner.
LOW_COVERAGE = 0.9


@dataclass(frozen=True)
class LowCoverage:
    name: str
    share: float
    unheard: list[tuple[float, float, str]]  # where to listen, in call seconds, and why it got no words


def unheard_spots(coverage: dict | None) -> list[tuple[float, float, str]]:
    """The stretches of a stored coverage (``Recording.coverage``) that got no
    words: (start, end, why), the reason empty in calls stored before reasons."""
    return [(u["start"], u["end"], u.get("reason", "")) for u in (coverage or {}).get("unheard", [])]


def low_coverage_calls(session, below: float = LOW_COVERAGE) -> list[LowCoverage]:
    """Calls whose transcript misses speech: what `status` and the owner's progress page list."""
    rows = session.execute(select(Recording.original_name, Recording.coverage).where(Recording.coverage.is_not(None)).order_by(Recording.id))
    return [LowCoverage(name, cov["share"], unheard_spots(cov)) for name, cov in rows if cov["share"] < below]


# --- claims -----------------------------------------------------------------

CLAIMED, BUSY, DONE = "claimed", "busy", "done"


def _holder_is_dead(claimed_by: str | None, live_addresses: Collection[str] | None = None) -> bool:
    """A claim by a process on this host that no longer exists (e.g. SIGKILLed),
    or by a Dask worker that is no longer in ``live_addresses`` (the cluster's)."""
    if not claimed_by:
        return False
    name, _, address = claimed_by.partition(" ")
    if address and live_addresses is not None and address not in live_addresses:
        return True
    host, _, pid = name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        pass
    return False


def try_claim(
    settings: Settings,
    recording_id: int,
    worker: str,
    checklist_sha: str | None = None,
    live_addresses: Collection[str] | Callable[[], Collection[str]] | None = None,
) -> str:
    """Atomically take a recording that still needs work: ``claimed``, ``busy``
    (a live worker has it) or ``done`` (nothing left to do, or it is gone).

    The UPDATE only matches the state we looked at (same status, and for a
    dead holder the same holder), so of two racing runners exactly one wins.
    ``live_addresses`` (or a callable giving them, asked only when needed) are
    the Dask workers alive now, to take over claims of workers on other hosts.
    """
    with session_scope(settings.db_url) as session:
        current = session.get(Recording, recording_id)
        if current is None:
            return DONE
        if not _needs_work_in(session, current, checklist_sha):  # a claim with nothing to do would leave its run open
            return DONE
        lapsed = store.utcnow() - dt.timedelta(seconds=CLAIM_LEASE_S)
        if current.status == RecordingStatus.PROCESSING:
            expired = current.claimed_at is None or current.claimed_at < lapsed
            if not expired:
                live = live_addresses() if callable(live_addresses) else live_addresses
                if not _holder_is_dead(current.claimed_by, live):
                    return BUSY
            condition = Recording.claimed_by == current.claimed_by if current.claimed_by else Recording.claimed_by.is_(None)
            previous = f"worker {current.claimed_by or '?'} stopped before finishing ({'lease lapsed' if expired else 'process gone'})"
        else:
            condition, previous = Recording.status == current.status, None
        result = session.execute(
            update(Recording)
            .where(Recording.id == recording_id, Recording.status == current.status, condition)
            .values(
                status=RecordingStatus.PROCESSING,
                claimed_by=worker,
                claimed_at=store.utcnow(),
                attempts=Recording.attempts + 1,
                error=None,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return BUSY
        # Runs left open belong to workers that stopped: close them so the audit trail shows the retry.
        session.execute(
            update(store.ProcessingRun)
            .where(store.ProcessingRun.recording_id == recording_id, store.ProcessingRun.finished_at.is_(None))
            .values(ok=False, finished_at=store.utcnow(), error=previous or "abandoned: its worker stopped before finishing")
            .execution_options(synchronize_session=False)
        )
        # The attempt's run is opened in the claim's own transaction: a worker
        # killed right after claiming still leaves a run for the next claim to close.
        session.add(_new_run(settings, recording_id, "align" if current.model is not None else "transcribe", worker))
        return CLAIMED


def _needs_work(settings: Settings, recording_id: int, checklist_sha: str | None) -> bool:
    with session_scope(settings.db_url) as session:
        rec = session.get(Recording, recording_id)
        return rec is not None and _needs_work_in(session, rec, checklist_sha)


def _needs_work_in(session, rec: Recording, checklist_sha: str | None) -> bool:
    """Whether a batch with this script (or with none) has anything to do: a
    stored transcript with no script to align it with leaves nothing, whatever
    the status says (a failed alignment stays failed until a script is given)."""
    if checklist_sha is None and (rec.model is not None or rec.status in (RecordingStatus.TRANSCRIBED, RecordingStatus.ALIGNED)):
        return False
    if rec.status == RecordingStatus.ALIGNED:
        return not _has_alignment(session, rec.id, checklist_sha)
    return True


def _has_alignment(session, recording_id: int, checklist_sha: str) -> bool:
    from pipeline.storage.store import AlignmentRow, ChecklistVersion

    return (
        session.scalar(
            select(AlignmentRow.id)
            .join(ChecklistVersion)
            .where(AlignmentRow.recording_id == recording_id, ChecklistVersion.sha256 == checklist_sha)
        )
        is not None
    )


# --- processing -------------------------------------------------------------


def _new_run(settings: Settings, recording_id: int, stage: str, worker: str) -> store.ProcessingRun:
    return store.ProcessingRun(
        recording_id=recording_id, stage=stage, worker=worker, engine=settings.engine, model=settings.model, started_at=store.utcnow()
    )


def _start_run(settings: Settings, recording_id: int, stage: str, worker: str) -> int:
    """The processing_runs row of this stage, open from now on so a worker killed
    midway leaves a trace: the one ``try_claim`` opened for this worker, else a new one."""
    with session_scope(settings.db_url) as session:
        opened = session.scalar(
            select(store.ProcessingRun.id).where(
                store.ProcessingRun.recording_id == recording_id,
                store.ProcessingRun.stage == stage,
                store.ProcessingRun.worker == worker,
                store.ProcessingRun.finished_at.is_(None),
            )
        )
        if opened is not None:
            return opened
        run = _new_run(settings, recording_id, stage, worker)
        session.add(run)
        session.flush()
        return run.id


def _finish_run(session, run_id: int, started: float, error: str | None) -> None:
    run = session.get(store.ProcessingRun, run_id)
    run.finished_at, run.seconds = store.utcnow(), time.perf_counter() - started
    run.ok, run.error = error is None, error


def process_many(settings: Settings, recording_ids: list[int], checklist=None, worker: str | None = None) -> list[ProcessResult]:
    """Transcribe (if not yet) and align (if a checklist is given) claimed
    recordings. Their transcription runs in batches (``transcribe_files``:
    fuller decoding batches cost less per call); each recording keeps its own
    run rows, its own transaction and its own error, so one bad file fails
    alone and a killed batch loses only what was not yet stored."""
    from pipeline.speech.transcribe import TranscribeOptions, transcribe_files

    worker = worker or worker_name()
    chats: set[int] = set()  # chat exports: read, not transcribed
    with session_scope(settings.db_url) as session:
        facts = {}
        for rid in recording_ids:
            rec = session.get(Recording, rid)
            facts[rid] = (rec.source_path, rec.original_name, rec.model is not None, rec.operator_channel, rec.sha256)
            if rec.kind == "chat":
                chats.add(rid)
    results: dict[int, ProcessResult] = {}

    def failed(rid: int, stage: str, run: tuple[int, float], exc: Exception) -> None:
        source, name = facts[rid][:2]
        message = str(exc) if isinstance(exc, CallreviewError) else f"{name}: unexpected {type(exc).__name__}: {exc}"
        if not isinstance(exc, CallreviewError):
            log.error("processing %s failed", name, exc_info=exc)
        with session_scope(settings.db_url) as session:
            rec = session.get(Recording, rid)
            rec.status, rec.error, rec.claimed_by = RecordingStatus.FAILED, message, None
            _finish_run(session, run[0], run[1], message)
        results[rid] = ProcessResult(source, FileResult.FAILED, rid, message)

    todo = [rid for rid in recording_ids if not facts[rid][2]]
    runs = {rid: (_start_run(settings, rid, "transcribe", worker), time.perf_counter()) for rid in todo}
    for rid in [rid for rid in todo if rid in chats]:
        try:
            transcript = load_input(Path(facts[rid][0]))[1]
            with session_scope(settings.db_url) as session:
                rec = session.get(Recording, rid)
                store.save_transcript(session, rec, transcript)
                rec.duration = transcript.duration
                if checklist is None:
                    rec.status, rec.claimed_by = RecordingStatus.TRANSCRIBED, None
                _finish_run(session, runs[rid][0], runs[rid][1], None)
        except Exception as exc:
            failed(rid, "transcribe", runs[rid], exc)
    todo = [rid for rid in todo if rid not in chats]
    with contextlib.ExitStack() as stack:
        paths: dict[int, Path] = {}
        for rid in todo:
            try:
                paths[rid] = stack.enter_context(local_copy(facts[rid][0]))
            except Exception as exc:
                failed(rid, "transcribe", runs[rid], exc)
        ready = [rid for rid in todo if rid in paths]
        heard = transcribe_files([(paths[rid], facts[rid][3]) for rid in ready], TranscribeOptions.from_settings(settings), settings.max_duration_s)
        broken: Exception | None = None  # the batch itself failed: every file left shares its error
        for rid in ready:
            try:
                if broken is None:
                    try:
                        _, audio, transcript = next(heard)
                    except Exception as exc:
                        broken = exc
                if broken is not None:
                    raise broken
                if isinstance(transcript, Exception):
                    raise transcript
                listen_path = make_listening_copy(paths[rid], settings.audio_dir / f"{facts[rid][4]}.ogg")
                with session_scope(settings.db_url) as session:
                    rec = session.get(Recording, rid)
                    store.save_transcript(session, rec, transcript)
                    rec.duration, rec.channels = audio.info.duration, audio.info.channels
                    rec.sample_rate, rec.listen_path = audio.info.sample_rate, str(listen_path.resolve())
                    if checklist is None:  # else it stays claimed until aligned
                        rec.status, rec.claimed_by = RecordingStatus.TRANSCRIBED, None
                    _finish_run(session, runs[rid][0], runs[rid][1], None)
            except Exception as exc:  # the batch goes on; the reason is stored and shown
                failed(rid, "transcribe", runs[rid], exc)
    learned = learned_for(settings, checklist) if checklist is not None else None
    for rid in recording_ids:
        if rid in results:
            continue
        if checklist is not None:
            run = (_start_run(settings, rid, "align", worker), time.perf_counter())
            try:
                align_stored(settings, rid, checklist, run[1], run[0], learned)
            except Exception as exc:
                failed(rid, "align", run, exc)
                continue
        results[rid] = ProcessResult(facts[rid][0], FileResult.DONE, rid)
    return [results[rid] for rid in recording_ids]


_LEARNED: dict[tuple, dict[str, list[str]]] = {}  # per process: (database, learning_stamp) -> examples


def learned_for(settings: Settings, checklist) -> dict[str, list[str]]:
    """What listeners confirmed for this script version so far: read once per
    batch, so every call of the batch learns the same, and read again only when
    a review or a drop changed it (``learning_stamp``)."""
    from pipeline.storage.checklists import learning_stamp, reviewed_examples, store_checklist_version

    with session_scope(settings.db_url) as session:
        version_id = store_checklist_version(session, checklist).id
        key = (settings.db_url, learning_stamp(session, version_id))
        if key not in _LEARNED:
            if len(_LEARNED) >= 8:
                _LEARNED.pop(next(iter(_LEARNED)))
            _LEARNED[key] = reviewed_examples(session, version_id)
        learned = _LEARNED[key]
    if learned:
        log.info("%s v%s: aligning with %d examples listeners confirmed (see: callreview checklists examples %s)",
                 checklist.id, checklist.version, sum(map(len, learned.values())), checklist.id)
    return learned


def align_stored(
    settings: Settings, recording_id: int, checklist, started: float, run_id: int, learned: dict[str, list[str]] | None = None
) -> None:
    """Align a stored transcript with ``checklist`` and the ``learned`` examples
    (``learned_for``), store the result (replacing an older one for the same
    version) and close the open ``run_id``."""
    from pipeline.script.align import align, alignment_record
    from pipeline.storage.checklists import store_checklist_version
    from pipeline.storage.store import AlignmentRow

    with session_scope(settings.db_url) as session:
        rec = session.get(Recording, recording_id)
        transcript = store.load_transcript(session, recording_id)
        version = store_checklist_version(session, checklist)
        alignment = align(transcript, checklist, extra_examples=learned)
        result = alignment_record(rec.original_name, transcript, checklist, alignment).to_json()
        if transcript.speakers:  # a mono call split by voice: the script chose the operator, perhaps the other voice
            store.save_transcript(session, rec, transcript)
        row = session.scalar(
            select(AlignmentRow).where(
                AlignmentRow.recording_id == recording_id, AlignmentRow.checklist_version_id == version.id
            )
        )
        if row is None:
            session.add(AlignmentRow(recording_id=recording_id, checklist_version_id=version.id, result=result))
        else:
            row.result = result
        rec.status, rec.claimed_by = RecordingStatus.ALIGNED, None
        _finish_run(session, run_id, started, None)


def work_on_many(
    settings: Settings,
    jobs: list[Job],
    checklist=None,
    worker: str | None = None,
    live_addresses: Collection[str] | Callable[[], Collection[str]] | None = None,
) -> list[ProcessResult]:
    """Claim registered recordings, then process the claimed ones together."""
    worker = worker or worker_name()
    results: dict[int, ProcessResult] = {}
    claimed = []
    for k, job in enumerate(jobs):
        outcome = try_claim(settings, job.recording_id, worker, checklist.sha256 if checklist else None, live_addresses)
        if outcome == BUSY:
            results[k] = ProcessResult(job.path, FileResult.BUSY, job.recording_id, f"{source_name(job.path)}: another worker is processing it")
        elif outcome == DONE:
            # It needed work when the batch planned it: a worker of this batch (one
            # that died after storing it, before its task ended) or a parallel run did it.
            results[k] = ProcessResult(job.path, FileResult.DONE, job.recording_id, "processed by another worker during this batch")
        else:
            claimed.append(k)
    done = process_many(settings, [jobs[k].recording_id for k in claimed], checklist, worker)
    results.update(zip(claimed, done))
    return [results[k] for k in range(len(jobs))]


# --- batches ----------------------------------------------------------------


def load_checklist_opt(checklist_path: Path | None):
    if checklist_path is None:
        return None
    from pipeline.script.checklist import load_checklist

    return load_checklist(checklist_path)


def plan(
    paths: Iterable[str | Path],
    settings: Settings,
    checklist=None,
    operator: str | None = None,
    operator_channel: str | None = None,
    metadata_csv: Path | None = None,
) -> Iterator[ProcessResult | Job]:
    """Register every input and yield a final ``ProcessResult`` for those that
    need nothing (missing, duplicate, already processed) and a ``Job`` for the rest.

    Registration is cheap (hash + probe) and happens where the batch was started;
    the jobs are what a runner spreads over processes or a cluster."""
    metadata = read_metadata(metadata_csv)
    store.upgrade(settings.db_url)
    seen: set[int] = set()
    for path in expand_paths(paths):
        if not is_url(path) and not Path(path).is_file():
            yield ProcessResult(str(path), FileResult.FAILED, None, f"{path}: no such file")
            continue
        try:
            recording_id, _ = register(settings, path, operator, operator_channel, metadata.get(source_name(path)))
        except (CallreviewError, OSError) as exc:
            yield ProcessResult(str(path), FileResult.FAILED, None, f"{source_name(path)}: {exc}" if isinstance(exc, OSError) else str(exc))
            continue
        if recording_id in seen:
            yield ProcessResult(str(path), FileResult.DUPLICATE, recording_id, f"{source_name(path)}: same audio as a file earlier in this batch")
            continue
        seen.add(recording_id)
        if not _needs_work(settings, recording_id, checklist.sha256 if checklist else None):
            yield ProcessResult(str(path), FileResult.SKIPPED, recording_id, "already processed")
            continue
        # A file that failed its probe at registration is retried here too:
        # decoding raises the same clear error if it is still bad.
        yield Job(str(path), recording_id)
