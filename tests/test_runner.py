"""Parallel runners on real databases: atomic claims, takeover of a dead
worker's claim, the local process pool, fsspec URLs, and a real Dask cluster
(scheduler + two workers on 127.0.0.1) that loses a worker midway."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from pgserver import free_port
from sqlalchemy import select, update

from pipeline.script.checklist import load_checklist
from pipeline.storage import ingest, sources, store
from pipeline.storage.ingest import BUSY, CLAIMED, DONE, register, try_claim
from pipeline.storage.runner import HEARTBEAT, batches, pending_groups, process_paths, watch, worker_alive
from pipeline.storage.store import AlignmentRow, ProcessingRun, Recording, UtteranceRow, session_scope
from pipeline.vocabulary import FileResult, RecordingStatus

sys.path.insert(0, str(Path(__file__).parent))
from shortcalls import copy_calls, make_short_calls  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"


@pytest.fixture(scope="session")
def short_calls(tmp_path_factory) -> list[Path]:
    return make_short_calls(tmp_path_factory.getbasetemp() / "short-calls")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- claims -----------------------------------------------------------------


def test_racing_claims_have_one_winner(settings, short_calls):
    rid, _ = register(settings, short_calls[0])
    barrier, wins = threading.Barrier(8), []

    def contend(i: int) -> None:
        barrier.wait()
        wins.append((i, try_claim(settings, rid, f"{socket.gethostname()}:{os.getpid()} racer-{i}")))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome for _, outcome in wins) == [BUSY] * 7 + [CLAIMED]
    with session_scope(settings.db_url) as s:
        rec = s.get(Recording, rid)
        winner = next(i for i, outcome in wins if outcome == CLAIMED)
        assert rec.status == RecordingStatus.PROCESSING and rec.claimed_by.endswith(f"racer-{winner}") and rec.attempts == 1


def test_dead_workers_claims_are_taken_over(settings, short_calls):
    host = socket.gethostname()
    rid, _ = register(settings, short_calls[0])
    # A live holder (this process) keeps its claim.
    assert try_claim(settings, rid, f"{host}:{os.getpid()}") == CLAIMED
    assert try_claim(settings, rid, "other:1") == BUSY
    # A holder on this host whose process is gone loses it; its open run is closed as abandoned.
    dead = f"{host}:{_dead_pid()}"
    with session_scope(settings.db_url) as s:
        s.execute(update(Recording).where(Recording.id == rid).values(claimed_by=dead))
    assert try_claim(settings, rid, "me:1") == CLAIMED
    with session_scope(settings.db_url) as s:
        run = s.scalars(select(ProcessingRun).where(ProcessingRun.recording_id == rid).order_by(ProcessingRun.id)).first()
        assert run.ok is False and run.finished_at is not None and dead in run.error
    # A Dask worker on another machine: dead when the cluster no longer lists it.
    remote = "otherhost:42 tcp://10.0.0.7:40001"
    with session_scope(settings.db_url) as s:
        s.execute(update(Recording).where(Recording.id == rid).values(claimed_by=remote))
    assert try_claim(settings, rid, "me:2", live_addresses={"tcp://10.0.0.7:40001"}) == BUSY
    assert try_claim(settings, rid, "me:2", live_addresses=lambda: {"tcp://10.0.0.8:40001"}) == CLAIMED
    # Any holder whose lease lapsed loses it.
    old = store.utcnow() - dt.timedelta(seconds=ingest.CLAIM_LEASE_S + 60)
    with session_scope(settings.db_url) as s:
        s.execute(update(Recording).where(Recording.id == rid).values(claimed_by="otherhost:42", claimed_at=old))
    assert try_claim(settings, rid, "me:3") == CLAIMED
    with session_scope(settings.db_url) as s:
        assert s.get(Recording, rid).attempts == 4
        # every claim opened its run in the claim's transaction: one run per attempt, the last one open
        runs = s.scalars(select(ProcessingRun).where(ProcessingRun.recording_id == rid).order_by(ProcessingRun.id)).all()
        assert [(r.worker, r.stage, r.finished_at is None) for r in runs] == [
            (f"{host}:{os.getpid()}", "transcribe", False), ("me:1", "transcribe", False), ("me:2", "transcribe", False), ("me:3", "transcribe", True)
        ]
    # A worker killed between its claim and any work: its attempt still has a run to close.
    other, _ = register(settings, short_calls[1])
    assert try_claim(settings, other, dead) == CLAIMED
    assert try_claim(settings, other, "me:1") == CLAIMED
    with session_scope(settings.db_url) as s:
        runs = s.scalars(select(ProcessingRun).where(ProcessingRun.recording_id == other).order_by(ProcessingRun.id)).all()
        assert [(r.worker, r.ok) for r in runs] == [(dead, False), ("me:1", None)] and dead in runs[0].error
        assert s.get(Recording, other).attempts == len(runs)
    # Nothing to do is not a claim.
    with session_scope(settings.db_url) as s:
        s.execute(update(Recording).where(Recording.id == rid).values(status=RecordingStatus.TRANSCRIBED, claimed_by=None))
    assert try_claim(settings, rid, "me:4") == DONE
    # Nor is a failed alignment when the batch gives no script: its transcript is stored, no run is opened.
    with session_scope(settings.db_url) as s:
        s.execute(update(Recording).where(Recording.id == rid).values(status=RecordingStatus.FAILED, model="base"))
        runs = store.count(s, ProcessingRun)
    assert try_claim(settings, rid, "me:5") == DONE
    assert ingest.plan([short_calls[0]], settings) and not [j for j in ingest.plan([short_calls[0]], settings) if isinstance(j, ingest.Job)]
    with session_scope(settings.db_url) as s:
        assert (s.get(Recording, rid).attempts, store.count(s, ProcessingRun)) == (4, runs)


# --- runners ----------------------------------------------------------------


def _assert_processed_once(url: str, names: list[str]) -> None:
    with session_scope(url) as s:
        recs = s.scalars(select(Recording).order_by(Recording.id)).all()
        assert sorted(r.original_name for r in recs) == sorted(names)
        for r in recs:
            assert r.status == RecordingStatus.TRANSCRIBED and r.claimed_by is None, (r.original_name, r.status, r.error)
            runs = s.scalars(select(ProcessingRun).where(ProcessingRun.recording_id == r.id)).all()
            assert sum(1 for run in runs if run.ok) == 1, [(run.worker, run.ok, run.error) for run in runs]
            assert all(run.finished_at is not None for run in runs)
            idx = s.scalars(select(UtteranceRow.idx).where(UtteranceRow.recording_id == r.id)).all()
            assert idx and sorted(idx) == list(range(len(idx)))


@pytest.mark.slow
def test_every_runner_hands_out_batches_spread_over_its_streams():
    jobs = [ingest.Job(f"c{i}.wav", i) for i in range(20)]
    assert [len(b) for b in batches(jobs[:6], 2)] == [3, 3]  # both workers busy, each with a batch
    assert [len(b) for b in batches(jobs, 2)] == [8, 8, 4]  # never more than BATCH_CALLS in one claim
    assert [len(b) for b in batches(jobs[:3], 8)] == [1, 1, 1]
    assert [j for b in batches(jobs, 3) for j in b] == jobs  # every job once, in order
    assert batches([], 2) == []


def test_local_process_pool(settings, short_calls, tmp_path):
    calls = copy_calls(short_calls[:2], tmp_path / "in")
    results = process_paths([calls[0].parent], settings, workers=2)
    assert sorted(r.status for r in results) == ["done"] * 2, results
    _assert_processed_once(settings.db_url, [p.name for p in calls])
    with session_scope(settings.db_url) as s:
        workers = set(s.scalars(select(ProcessingRun.worker)))
    assert str(os.getpid()) not in {w.rpartition(":")[2] for w in workers}  # done in the pool, not here
    # A second pool run finds nothing to do.
    assert {r.status for r in process_paths([calls[0].parent], settings, workers=2)} == {"skipped"}


@pytest.mark.slow
def test_fsspec_url_input(settings, tmp_path, short_calls):
    """A URL (here file://; s3:// works the same through fsspec) is hashed as it
    streams and copied to a temp file only while a worker decodes it."""
    folder = copy_calls(short_calls[:1], tmp_path / "bucket")[0].parent
    url = f"file://{folder}/"
    assert sources.expand_paths([url]) == [f"file://{folder / short_calls[0].name}"]
    results = process_paths([url], settings)
    assert [r.status for r in results] == ["done"], results
    with session_scope(settings.db_url) as s:
        rec = s.scalars(select(Recording)).one()
        assert rec.source_path.startswith("file://") and rec.original_name == short_calls[0].name
        assert rec.duration > 5 and Path(rec.listen_path).exists()
    assert not list(Path(tempfile.gettempdir()).glob("callreview-stage-*/" + short_calls[0].name))


# --- Dask -------------------------------------------------------------------



def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes (one thread each)
    on 127.0.0.1, each in its own process group so a test can kill one whole."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "wb")
        proc = subprocess.Popen([str(BIN / "dask"), *args], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        procs.append(proc)
        return proc

    try:
        start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"])
        workers = [
            start(f"worker{i}", ["worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                 "--host", "127.0.0.1", "--local-directory", str(tmp_path / f"w{i}")])
            for i in range(2)
        ]
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers, logs
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_dask_cluster_survives_a_killed_worker(settings, dask_cluster, short_calls, tmp_path):
    """The demo-sized batch runs as Dask tasks (units of two calls) into PostgreSQL;
    one worker is SIGKILLed (nanny and all) in the middle of its unit. Dask reruns
    the task on the other worker, which takes the dead claims over: every call once."""
    address, workers, _logs = dask_cluster
    calls = copy_calls(short_calls[:4], tmp_path / "in")
    results, errors = [], []

    def run() -> None:
        try:
            results.extend(process_paths([calls[0].parent], settings, scheduler=address))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    batch = threading.Thread(target=run, daemon=True)
    batch.start()
    victim = victim_worker = None
    deadline = time.monotonic() + 180
    while victim is None:
        assert batch.is_alive(), (errors, results)
        assert time.monotonic() < deadline, "no worker started a call"
        with session_scope(settings.db_url) as s:
            done = store.count(s, Recording, status=RecordingStatus.TRANSCRIBED)
            running = s.execute(
                select(ProcessingRun.recording_id, ProcessingRun.worker).where(ProcessingRun.finished_at.is_(None))
            ).first()
        if running is not None and done >= 1:
            pid = int(running.worker.split(" ")[0].rpartition(":")[2])
            victim = next(w for w in workers if w.pid == os.getpgid(pid))
            victim_worker = running.worker
            os.killpg(victim.pid, signal.SIGKILL)
        time.sleep(0.1)
    batch.join(240)
    assert not batch.is_alive(), "the batch did not finish after a worker died"
    assert not errors, errors
    assert sorted(r.status for r in results) == ["done"] * len(calls), results
    _assert_processed_once(settings.db_url, [p.name for p in calls])
    with session_scope(settings.db_url) as s:
        abandoned = s.scalars(select(ProcessingRun).where(ProcessingRun.ok.is_(False))).all()
        # the dead worker's unit: the calls it was transcribing together, each closed as abandoned
        assert abandoned and {run.worker for run in abandoned} == {victim_worker}
        assert len(abandoned) <= 2  # 4 calls over 2 workers: units of 2
        for run in abandoned:
            assert "stopped before finishing" in run.error
            retried = s.get(Recording, run.recording_id)
            assert retried.attempts == 2
            redo = s.scalars(select(ProcessingRun).where(ProcessingRun.recording_id == retried.id, ProcessingRun.ok.is_(True))).one()
            assert redo.worker != victim_worker
        assert sum(s.scalars(select(Recording.attempts))) == len(calls) + len(abandoned)
        assert store.count(s, ProcessingRun) == len(calls) + len(abandoned)  # a run for every attempt


# --- uploads: registered by the page, processed by the watching worker ------------

SCRIPT = REPO / "checklists" / "appliances-inbound.yaml"


@pytest.mark.slow
def test_watching_worker_aligns_uploads_with_their_script(settings, short_calls, tmp_path):
    """What the owner's upload page does (register, nothing decoded) and what the
    worker beside the server does with it, on SQLite and PostgreSQL."""
    calls = copy_calls(short_calls[:2], tmp_path / "data" / "uploads" / "batch")
    bad = calls[0].parent / "notes.wav"
    bad.write_text("не звук\n" * 50, encoding="utf-8")
    script = load_checklist(SCRIPT)
    registered = ingest.register_uploads(settings, [*calls, bad, calls[0]], script, "Анна")
    assert [r.status for r in registered] == [FileResult.REGISTERED, FileResult.REGISTERED, FileResult.FAILED, FileResult.DUPLICATE]
    assert "notes.wav" in registered[2].message
    with session_scope(settings.db_url) as s:
        assert store.count(s, Recording, status=RecordingStatus.NEW) == 2  # registering transcribes nothing
    [(checklist, jobs)] = pending_groups(settings)
    assert checklist.sha256 == script.sha256 and [j.recording_id for j in jobs] == [r.recording_id for r in registered[:2]]

    results = list(watch(settings, once=True))
    assert sorted(r.status for r in results) == [FileResult.DONE] * 2, results
    assert worker_alive(settings) and (settings.data_dir / HEARTBEAT).exists()
    with session_scope(settings.db_url) as s:
        for r in registered[:2]:
            rec = s.get(Recording, r.recording_id)
            assert rec.status == RecordingStatus.ALIGNED and rec.operator == "Анна"
            row = s.scalar(select(AlignmentRow).where(AlignmentRow.recording_id == rec.id))
            assert row.record.checklist.sha256 == script.sha256
    assert pending_groups(settings) == [] and list(watch(settings, once=True)) == []
    assert [u.status for u in ingest.recent_uploads(settings)] == [RecordingStatus.FAILED] + [RecordingStatus.ALIGNED] * 2


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_starts_the_upload_worker_and_it_ends_with_the_server(settings, short_calls, tmp_path):
    """`callreview serve` runs the review app and, as a separate process, the worker:
    an upload registered while it runs gets aligned, and stopping the server stops it."""
    import psutil

    env = {**os.environ, "DATABASE_URL": settings.db_url, "CALLREVIEW_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(BIN / "callreview"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not [p for p in psutil.Process(server.pid).children() if "--watch" in p.cmdline()]:
            assert server.poll() is None and time.monotonic() < deadline, "serve started no worker"
            time.sleep(0.2)
        [worker] = [p for p in psutil.Process(server.pid).children() if "--watch" in p.cmdline()]
        [call] = copy_calls(short_calls[2:3], settings.data_dir / "uploads" / "batch")
        [reg] = ingest.register_uploads(settings, [call], load_checklist(SCRIPT))
        deadline = time.monotonic() + 180
        while True:
            with session_scope(settings.db_url) as s:
                status = s.get(Recording, reg.recording_id).status
            if status == RecordingStatus.ALIGNED:
                break
            assert status != RecordingStatus.FAILED and time.monotonic() < deadline, status
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(30)
    worker.wait(15)  # it notices its parent is gone within a poll
    assert not worker.is_running()
