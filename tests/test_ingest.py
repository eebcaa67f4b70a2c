"""Batch ingest on real audio and real databases (SQLite and PostgreSQL):
reruns change nothing, bad files are recorded and skipped past, a batch
killed with SIGKILL resumes without duplicates, and ``status`` lists failures."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jiwer
import pytest
from sqlalchemy import select

from pipeline.storage import store
from pipeline.storage.runner import process_paths
from pipeline.storage.store import ProcessingRun, Recording, UtteranceRow, session_scope
from pipeline.vocabulary import RecordingStatus

sys.path.insert(0, str(Path(__file__).parent))
from shortcalls import DIALOGUES, copy_calls, make_bad_files, make_short_calls, make_truncated  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def short_calls(tmp_path_factory) -> list[Path]:
    return make_short_calls(tmp_path_factory.getbasetemp() / "short-calls")


def _plain(text: str) -> str:
    """Lower case, punctuation out: what WER is scored on."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("ё", "е")).split())


def _snapshot(url: str) -> dict:
    """What a rerun must leave unchanged: every row that describes a recording."""
    with session_scope(url) as s:
        recs = s.execute(
            select(Recording.id, Recording.sha256, Recording.status, Recording.original_name, Recording.duration).order_by(Recording.id)
        ).all()
        utts = s.execute(
            select(UtteranceRow.recording_id, UtteranceRow.idx, UtteranceRow.speaker, UtteranceRow.text).order_by(UtteranceRow.id)
        ).all()
        runs = store.count(s, ProcessingRun)
    return {"recordings": [tuple(r) for r in recs], "utterances": [tuple(u) for u in utts], "runs": runs}


def test_migrations_build_the_schema_the_code_declares(db_url):
    """The migrated database (SQLite and PostgreSQL) has every table, column,
    index and key the models declare, and nothing else: a model changed
    without its migration fails here, not on a user's machine."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.get_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), store.Base.metadata) == []


def test_many_first_requests_at_once_migrate_the_database_once(tmp_path):
    """Several listeners' first requests to a fresh server all ask for the
    migrated database at once; Alembic's globals broke under that (KeyError
    'config' on the login page, seen in benchmarks/review_load.py)."""
    from concurrent.futures import ThreadPoolExecutor

    urls = [f"sqlite:///{tmp_path / f'db{i}.sqlite'}" for i in range(3)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(store.migrated, [u for u in urls for _ in range(8)]))
    assert results == [u for u in urls for _ in range(8)]
    with session_scope(urls[-1]) as s:
        assert store.count(s, Recording) == 0  # the schema is there


def test_uploaded_file_names_cannot_escape_collide_or_overflow(tmp_path):
    """The browser's file name is only a hint: ".." or a path, 300 Cyrillic
    letters (600 bytes, over the file system's 255), or two files of one name
    used to crash the upload page or overwrite each other."""
    from pipeline.storage.ingest import save_uploads

    names = ["..", "../../etc/passwd", "я" * 300 + ".wav", ".bashrc", "C:\\Users\\x\\call.m4a", "call.mp3", "call.mp3"]
    paths = save_uploads(tmp_path / "up", ((n, n.encode()) for n in names))
    assert all(p.is_file() and p.is_relative_to(tmp_path / "up") for p in paths)
    assert [p.read_bytes().decode() for p in paths] == names  # nothing overwritten
    assert all(len(p.name.encode()) <= 255 and not p.name.startswith(".") for p in paths)
    assert paths[2].suffix == ".wav" and paths[4].name == "call.m4a" and paths[5].name == paths[6].name == "call.mp3"


def test_reingest_is_idempotent(settings, short_calls, tmp_path):
    folder = copy_calls(short_calls[:2], tmp_path / "in")[0].parent
    first = process_paths([folder], settings)
    assert [r.status for r in first] == ["done", "done"], first
    before = _snapshot(settings.db_url)
    assert len(before["recordings"]) == 2 and before["utterances"]

    second = process_paths([folder], settings)
    assert [r.status for r in second] == ["skipped", "skipped"]
    assert _snapshot(settings.db_url) == before

    # The same audio under another name is the same recording, not a new row.
    (folder / "copy.wav").write_bytes(short_calls[0].read_bytes())
    third = process_paths([folder / "copy.wav"], settings)
    assert third[0].status == "skipped"
    assert _snapshot(settings.db_url) == before


def test_bad_files_are_recorded_and_the_batch_goes_on(settings, short_calls, tmp_path, monkeypatch):
    folder = tmp_path / "upload"
    good = copy_calls(short_calls[:2], folder)
    bad = make_bad_files(folder, short_calls[1])
    cut = make_truncated(short_calls[1], folder / "cut_mid.mp3")

    results = {Path(r.path).name: r for r in process_paths([folder], settings)}
    assert set(results) == {p.name for p in good} | set(bad) | {cut.name}
    for name, what in bad.items():
        assert results[name].status == "failed", (what, results[name])
        assert name in results[name].message, (what, results[name].message)
    for p in good:
        assert results[p.name].status == "done", results[p.name]
    # Cut in the middle: the good part is transcribed, with a warning logged.
    assert results[cut.name].status == "done", results[cut.name]

    with session_scope(settings.db_url) as s:
        rows = {r.original_name: r for r in s.scalars(select(Recording))}
    for name in bad:
        assert rows[name].status == RecordingStatus.FAILED and name in rows[name].error
    assert all(rows[p.name].status == RecordingStatus.TRANSCRIBED for p in good)
    assert rows[cut.name].duration < 6.0
    # each stored transcript keeps its coverage, and reads back with it
    with session_scope(settings.db_url) as s:
        for p in good:
            cov = store.load_transcript(s, rows[p.name].id).coverage
            assert cov.speech_s > 0 and cov.share >= 0.9, (p.name, cov)
        # a call whose speech is half without words is flagged for the owner
        s.get(Recording, rows[good[0].name].id).coverage = {
            "speech_s": 10.0, "heard_s": 5.0, "share": 0.5, "unheard": [{"channel": 1, "start": 3.0, "end": 8.0}]}

    # `callreview status` lists every failure with its reason.
    from typer.testing import CliRunner

    from pipeline import cli, config

    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    monkeypatch.setenv("CALLREVIEW_DATA_DIR", str(settings.data_dir))
    config.get_settings.cache_clear()  # the batch above read the defaults already
    out = CliRunner().invoke(cli.app, ["status"])
    assert out.exit_code == 0, out.output
    assert "failed" in out.output and "transcribed" in out.output
    for name in bad:
        line = next(ln for ln in out.output.splitlines() if ln.startswith(f"FAILED {name}:"))
        assert rows[name].error in line
    low = [ln for ln in out.output.splitlines() if ln.startswith("LOW COVERAGE")]
    assert low == [f"LOW COVERAGE {good[0].name}: 50% of its speech got words; listen at 3-8 s"], out.output


def _db_state(url: str) -> tuple[int, int, list]:
    with session_scope(url) as s:
        done = store.count(s, Recording, status=RecordingStatus.TRANSCRIBED)
        total = store.count(s, Recording)
        open_runs = s.execute(
            select(ProcessingRun.worker).where(ProcessingRun.finished_at.is_(None))
        ).scalars().all()
    return done, total, open_runs


# Two CLI runs with two worker processes each are the slowest test here: SQLite
# only (the default setup); the Dask test kills a worker on PostgreSQL.
def test_calls_transcribed_in_one_batch_keep_their_own_words(settings, short_calls, tmp_path):
    """process transcribes the claimed calls together (transcribe_many): each
    recording must get its own words, in its own rows, with a bad file among
    them failing alone and the results in input order."""
    folder = tmp_path / "in"
    files = copy_calls(short_calls[:3], folder)
    bad = folder / "b_notes.wav"
    bad.write_text("не звук\n" * 50, encoding="utf-8")
    order = [files[0], bad, files[1], files[2]]
    results = process_paths(order, settings)
    assert [Path(r.path).name for r in results] == [p.name for p in order]
    assert [r.status for r in results] == ["done", "failed", "done", "done"], results
    # Recognised words differ between CPUs (CTranslate2 picks int8 kernels by
    # ISA), so each call is matched to its own dialogue by WER, never by a word.
    refs = [_plain(" ".join(text for _, text in DIALOGUES[k])) for k in range(3)]
    with session_scope(settings.db_url) as s:
        for k, path in enumerate(files):
            rec = s.scalar(select(Recording).where(Recording.original_name == path.name))
            text = _plain(" ".join(u.text for u in s.scalars(select(UtteranceRow).where(UtteranceRow.recording_id == rec.id))))
            wers = [jiwer.wer(ref, text) for ref in refs]
            assert wers[k] <= 0.5 and wers[k] == min(wers), (path.name, text, wers)
            runs = s.scalars(select(ProcessingRun).where(ProcessingRun.recording_id == rec.id)).all()
            assert [(r.stage, r.ok) for r in runs] == [("transcribe", True)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_batch_killed_with_sigkill_resumes_without_duplicates(db_url, short_calls, tmp_path):
    """A real `callreview ingest` (two worker processes) is SIGKILLed while its
    workers hold claims; the rerun takes over the dead workers' claims and
    finishes every file once."""
    short_calls = short_calls[:4]
    folder = copy_calls(short_calls, tmp_path / "in")[0].parent
    env = {**os.environ, "DATABASE_URL": db_url, "CALLREVIEW_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    cmd = [str(REPO / ".venv" / "bin" / "callreview"), "ingest", str(folder), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    try:
        while True:
            done, total, open_runs = _db_state(db_url) if proc.poll() is None else (0, 0, [])
            if proc.poll() is not None:
                pytest.fail(f"the batch ended before it could be killed:\n{proc.stdout.read().decode()}")
            if open_runs:  # workers hold claims: kill now (waiting for a first finished call raced the batches, which end together)
                break
            assert time.monotonic() < deadline, "the batch made no progress"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done, _total, open_runs = _db_state(db_url)
    assert done < len(short_calls)
    with session_scope(db_url) as s:
        interrupted = s.scalars(select(Recording.id).where(Recording.status == RecordingStatus.PROCESSING)).all()
    killed_workers = {w.split(" ")[0] for w in open_runs}
    # Its worker processes die with it (no orphan keeps a claim).
    time.sleep(1.0)
    for worker in killed_workers:
        pid = int(worker.rpartition(":")[2])
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"worker {worker} outlived the killed batch")

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    with session_scope(db_url) as s:
        recs = s.scalars(select(Recording).order_by(Recording.id)).all()
        assert sorted(r.original_name for r in recs) == sorted(p.name for p in short_calls)
        assert all(r.status == RecordingStatus.TRANSCRIBED for r in recs)
        for r in recs:
            runs = s.scalars(select(ProcessingRun).where(ProcessingRun.recording_id == r.id)).all()
            assert sum(1 for run in runs if run.ok) == 1, [(run.worker, run.ok, run.error) for run in runs]
            assert len(runs) == r.attempts  # however the kill fell, every attempt left its run
            assert all(run.finished_at is not None for run in runs)
            idx = s.scalars(select(UtteranceRow.idx).where(UtteranceRow.recording_id == r.id)).all()
            assert idx and sorted(idx) == list(range(len(idx)))
        abandoned = s.scalars(select(ProcessingRun).where(ProcessingRun.ok.is_(False))).all()
        # The runs the kill interrupted are closed as abandoned, naming the dead worker.
        assert {run.worker.split(" ")[0] for run in abandoned} == killed_workers
        assert all("stopped before finishing" in run.error for run in abandoned)
        attempts = {r.id: r.attempts for r in recs}
        assert all(attempts[i] == 2 for i in interrupted) and interrupted
        assert sum(attempts.values()) == len(recs) + len(interrupted)


def test_a_stored_mono_call_keeps_the_operator_the_script_chose(settings, synth, tmp_path):
    """`process` on a mono mix: the transcript is stored, then aligned from the
    database. The voice split must survive the round trip, the aligner must
    choose the operator by the script, and the stored turns must name the
    speakers as the stored alignment does."""
    import json

    import numpy as np

    from pipeline.speech.audio import decode
    from pipeline.storage.store import AlignmentRow

    call = json.loads((REPO / "data" / "demo" / "call_04_no_budget.json").read_text(encoding="utf-8"))
    stereo = decode(REPO / "data" / "demo" / call["file"])
    mono = synth.write_call(tmp_path / "in" / "mono_call.wav", np.sum(stereo.channels, axis=0) * 0.7, 16000)
    [result] = process_paths([mono], settings, checklist_path=REPO / "checklists" / "appliances-inbound.yaml")
    assert result.status == "done", result
    with session_scope(settings.db_url) as s:
        rec = s.scalar(select(Recording).where(Recording.original_name == "mono_call.wav"))
        stored = s.scalar(select(AlignmentRow).where(AlignmentRow.recording_id == rec.id)).result
        speakers = {u.idx: u.speaker for u in s.scalars(select(UtteranceRow).where(UtteranceRow.recording_id == rec.id))}
        assert rec.speakers is not None and rec.speakers["operator_by"] == "script", rec.speakers
        assert stored["speakers"] == rec.speakers
        assert stored["speakers"]["operator_steps"] > stored["speakers"]["client_steps"]
        found = [step for step in stored["steps"] if step["status"] == "found"]
        assert found and all(speakers[i] == "operator" for step in found for i in step["utterances"]), (found, speakers)
        assert set(speakers.values()) == {"operator", "client"}
