"""Run the stages (decode, transcribe, align, store) over a batch of files: in
this process, in a pool of local processes, or on the workers of a Dask
distributed cluster. ``process_paths`` is what ``callreview ingest``/``process``
and the owner's upload page call.

All three hand out the same work unit (``batches``): up to ``BATCH_CALLS``
registered recordings that one worker claims atomically in the database and
transcribes together (``ingest.work_on_many``), each then stored in its own
transaction. So two runners never process the same file, and a recording whose
worker died is taken over by the retry (Dask reschedules the task; the local
pool is restarted).

Each worker process loads the Whisper model once, with ``cpu_threads`` = its
share of the cores. The transcriber already decodes in one stream per core, so
the default is one process per two cores (``config.default_workers``).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.config import Settings, available_cores, default_workers
from pipeline.script.checklist import Checklist
from pipeline.storage.ingest import (
    Job,
    ProcessResult,
    load_checklist_opt,
    plan,
    work_on_many,
    worker_name,
)
from pipeline.storage.sources import source_name
from pipeline.vocabulary import FileResult, RecordingStatus

log = logging.getLogger(__name__)

# How many times a batch restarts a local pool whose worker died (OOM killer,
# a crash in a native library) before it gives the remaining files up.
POOL_RESTARTS = 2

def _worker_settings(settings: Settings, threads: int) -> Settings:
    """The settings a worker process runs with: absolute data dir (workers may
    start elsewhere) and, unless the user chose, ``threads`` CPU threads."""
    update = {"data_dir": settings.data_dir.resolve()}
    if not settings.cpu_threads:
        update["cpu_threads"] = max(1, threads)
    return settings.model_copy(update=update)


def _load_model(settings: Settings) -> None:
    """Load the model now, so the first file does not pay for it; an error is
    left for the first file to hit and record with its reason."""
    from pipeline.speech.transcribe import TranscribeOptions, get_transcriber

    try:
        get_transcriber(TranscribeOptions.from_settings(settings))
    except Exception as exc:  # noqa: BLE001 - each file then reports its own error
        log.warning("could not preload the model: %s", exc)


def _split(items: Iterable[ProcessResult | Job]) -> tuple[list[ProcessResult], list[Job]]:
    done, jobs = [], []
    for item in items:
        (jobs if isinstance(item, Job) else done).append(item)
    return done, jobs


def batches(jobs: list[Job], streams: int) -> list[list[Job]]:
    """The work units every runner hands out: each claims and transcribes its calls
    together (``work_on_many``), up to ``BATCH_CALLS`` a unit, and there are at
    least as many units as parallel ``streams`` while the calls allow, so no
    worker waits while another holds the whole batch."""
    from pipeline.speech.transcribe import BATCH_CALLS

    if not jobs:
        return []
    size = max(1, min(BATCH_CALLS, -(-len(jobs) // max(1, streams))))
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def _give_up(settings: Settings, job: Job, message: str) -> ProcessResult:
    """Record a recording no worker could finish as failed, with the reason."""
    from pipeline.storage.store import Recording, session_scope

    with session_scope(settings.db_url) as session:
        rec = session.get(Recording, job.recording_id)
        if rec is not None:
            rec.status, rec.error, rec.claimed_by = RecordingStatus.FAILED, message, None
    return ProcessResult(job.path, FileResult.FAILED, job.recording_id, message)


# --- local process pool -----------------------------------------------------

_pool_state: dict = {}


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the batch process dies, so a
    killed batch leaves no orphan holding claims (its rerun takes them over)."""
    try:
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # noqa: BLE001 - best effort; elsewhere the lease still frees claims
        pass


def _pool_init(settings: Settings, checklist, parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _pool_state.update(settings=settings, checklist=checklist, worker=worker_name())
    _load_model(settings)


def _pool_work(batch: list[Job]) -> list[ProcessResult]:
    return work_on_many(_pool_state["settings"], batch, _pool_state["checklist"], _pool_state["worker"])


def run_local(
    items: Iterable[ProcessResult | Job], settings: Settings, checklist=None, workers: int | None = None
) -> Iterator[ProcessResult]:
    """Process jobs on ``workers`` local processes (default: one per two cores); yields
    results as they finish. Registration results pass straight through."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    done, jobs = _split(items)
    yield from done
    if not jobs:
        return
    workers = max(1, min(workers or default_workers(), len(jobs)))
    if workers == 1:  # a pool would only add a process start and a model load
        yield from run_serial(jobs, settings, checklist)
        return
    wsettings = _worker_settings(settings, available_cores() // workers)
    # spawn, not fork: the parent holds database connections and maybe threads.
    context = multiprocessing.get_context("spawn")
    pending, restarts = list(jobs), 0
    while pending:
        with ProcessPoolExecutor(workers, context, initializer=_pool_init, initargs=(wsettings, checklist, os.getpid())) as pool:
            futures = {pool.submit(_pool_work, batch): batch for batch in batches(pending, workers)}
            pending = []
            try:
                for future in as_completed(futures):
                    batch = futures[future]
                    try:
                        yield from future.result()
                    except BrokenProcessPool:
                        pending.extend(batch)
                    except Exception as exc:  # noqa: BLE001 - e.g. the database went away
                        for job in batch:
                            yield _give_up(settings, job, f"{source_name(job.path)}: the worker failed: {type(exc).__name__}: {exc}")
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        if pending:
            restarts += 1
            if restarts > POOL_RESTARTS:
                for job in pending:
                    yield _give_up(settings, job, f"{source_name(job.path)}: the worker processing it died {restarts} times (out of memory?)")
                return
            log.warning("a worker process died; restarting the pool for %d remaining file(s)", len(pending))


# --- Dask distributed -------------------------------------------------------


def _dask_live_addresses() -> set[str]:
    from distributed import get_client

    return set(get_client().scheduler_info(n_workers=-1)["workers"])


def _dask_work(settings: Settings, batch: list[Job], checklist) -> list[ProcessResult]:
    """The task each Dask worker runs: claim, then process a batch of recordings together.

    A task occupies one worker thread, so it transcribes with one CPU thread
    unless the user set ``cpu_threads``: run one worker thread per core."""
    from distributed import get_worker

    if not settings.cpu_threads:
        settings = settings.model_copy(update={"cpu_threads": 1})
    # The model is loaded once per worker process: get_transcriber caches it.
    return work_on_many(settings, batch, checklist, worker_name(get_worker().address), _dask_live_addresses)


def run_dask(
    items: Iterable[ProcessResult | Job], settings: Settings, checklist=None, scheduler: str = "tcp://127.0.0.1:8786"
) -> Iterator[ProcessResult]:
    """Process jobs as tasks on the Dask cluster at ``scheduler``; yields results as they finish.

    Workers need the installed package, the audio (same path, or an fsspec URL)
    and the database; they get the database URL from here. A task whose worker
    dies is rescheduled by Dask, and its claim is taken over by the retry."""
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    done, jobs = _split(items)
    yield from done
    if not jobs:
        return
    if settings.db_url.startswith("sqlite"):
        log.warning("Dask workers write to a SQLite file: only workers on this machine can reach it; use PostgreSQL (DATABASE_URL)")
    wsettings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    with Client(scheduler, timeout="30s") as client:
        streams = sum(client.nthreads().values()) or 1
        futures = {
            client.submit(_dask_work, wsettings, batch, checklist, key=f"callreview-{batch[0].recording_id}-{os.getpid()}-{i}",
                          pure=False): batch
            for i, batch in enumerate(batches(jobs, streams))
        }
        for future in as_completed(futures):
            batch = futures[future]
            try:
                yield from future.result()
            except (KilledWorker, FutureCancelledError) as exc:
                for job in batch:
                    yield _give_up(settings, job, f"{source_name(job.path)}: the Dask workers processing it kept dying ({type(exc).__name__})")
            except Exception as exc:  # noqa: BLE001 - e.g. a worker without the package
                for job in batch:
                    yield _give_up(settings, job, f"{source_name(job.path)}: the Dask task failed: {type(exc).__name__}: {exc}")


def run_serial(items: Iterable[ProcessResult | Job], settings: Settings, checklist=None) -> Iterator[ProcessResult]:
    """This process does the jobs, a batch of ``BATCH_CALLS`` at a time; results in input order."""
    from pipeline.speech.transcribe import BATCH_CALLS

    worker = worker_name()
    held: list[ProcessResult | Job] = []  # up to a batch of jobs, and the results between them, in order
    for item in itertools.chain(items, [None]):  # None: the end, flush what is held
        if item is not None:
            held.append(item)
        jobs = [h for h in held if isinstance(h, Job)]
        if item is None or len(jobs) >= BATCH_CALLS:
            done = iter(work_on_many(settings, jobs, checklist, worker))
            yield from (next(done) if isinstance(h, Job) else h for h in held)
            held = []


def iter_process(
    paths: Iterable[str | Path],
    settings: Settings,
    checklist_path: Path | None = None,
    operator: str | None = None,
    operator_channel: str | None = None,
    metadata_csv: Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
) -> Iterator[ProcessResult]:
    """Register then process each file, yielding one result per input file.

    ``workers`` > 1 spreads the work over that many local processes;
    ``scheduler`` (``tcp://host:8786``) over a Dask cluster. Results then come
    in the order they finish."""
    checklist = load_checklist_opt(checklist_path)
    items = plan(paths, settings, checklist, operator, operator_channel, metadata_csv)
    if scheduler:
        yield from run_dask(items, settings, checklist, scheduler)
        return
    if workers > 1:
        yield from run_local(items, settings, checklist, workers)
        return
    yield from run_serial(items, settings, checklist)


def process_paths(paths: Iterable[str | Path], settings: Settings, **options) -> list[ProcessResult]:
    """``iter_process`` as a list, for callers that wait for the whole batch."""
    return list(iter_process(paths, settings, **options))


# --- the worker beside the review app -----------------------------------------

HEARTBEAT = "worker.alive"  # in the data folder; touched every few seconds while a worker watches


def pending_groups(settings: Settings) -> list[tuple[Checklist | None, list[Job]]]:
    """Registered recordings that still need work, grouped by the script they are to
    be aligned with: new ones, claimed ones (a dead worker's claim is taken over), and
    stored ones whose chosen script has no alignment yet."""
    from sqlalchemy import and_, or_, select

    from pipeline.storage.store import AlignmentRow, ChecklistVersion, Recording, session_scope

    not_aligned_to_choice = ~select(AlignmentRow.id).where(
        AlignmentRow.recording_id == Recording.id, AlignmentRow.checklist_version_id == Recording.checklist_version_id
    ).exists()
    stmt = select(Recording).where(or_(
        Recording.status.in_((RecordingStatus.NEW, RecordingStatus.PROCESSING)),
        and_(Recording.status.in_((RecordingStatus.TRANSCRIBED, RecordingStatus.ALIGNED)),
             Recording.checklist_version_id.is_not(None), not_aligned_to_choice),
    )).order_by(Recording.id)
    groups: dict[int | None, list[Job]] = {}
    with session_scope(settings.db_url) as session:
        for rec in session.scalars(stmt):
            groups.setdefault(rec.checklist_version_id, []).append(Job(rec.source_path, rec.id))
        scripts = {vid: Checklist.model_validate(session.get(ChecklistVersion, vid).content) for vid in groups if vid is not None}
    return [(scripts.get(vid), jobs) for vid, jobs in groups.items()]


def watch(settings: Settings, poll_s: float = 2.0, once: bool = False, parent: int | None = None) -> Iterator[ProcessResult]:
    """Process what the upload page registers, as it comes, each call with the script
    chosen for it (``callreview process --watch``; ``callreview serve`` starts one).
    ``once``: what is pending now, then return; ``parent``: stop when that process is gone."""
    import threading
    import time

    beat = Path(settings.data_dir) / HEARTBEAT
    beat.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def heartbeat() -> None:  # a batch of long calls takes minutes: beat from a thread
        while not stop.is_set():
            beat.touch()
            stop.wait(5.0)

    threading.Thread(target=heartbeat, name="callreview-heartbeat", daemon=True).start()
    try:
        while True:
            for checklist, jobs in pending_groups(settings):
                for result in run_serial(jobs, settings, checklist):
                    if result.status != FileResult.BUSY:  # another live worker has it
                        yield result
            if once or (parent is not None and os.getppid() != parent):
                return
            time.sleep(poll_s)
    finally:
        stop.set()


def worker_alive(settings: Settings, within_s: float = 20.0) -> bool:
    """Whether a watching worker has beaten its heartbeat lately (the upload page says so)."""
    import time

    beat = Path(settings.data_dir) / HEARTBEAT
    return beat.exists() and time.time() - beat.stat().st_mtime < within_s
