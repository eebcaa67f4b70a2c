"""Backup and restore on real databases (SQLite and PostgreSQL): a copy made
while listeners write holds every review submitted before it began and passes
the integrity check; a damaged or foreign file is refused with nothing replaced."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from test_review_data import STEP_IDS, build_world
from typer.testing import CliRunner

from pipeline.review import review
from pipeline.review.review import write_session
from pipeline.storage import backups
from pipeline.storage.store import Review, StepMark, session_scope
from pipeline.vocabulary import Mark, ReviewStatus


def _submit(url: str, listener_id: int, aid: int) -> None:
    with write_session(url) as s:
        for sid in STEP_IDS:
            review.save_mark(s, listener_id, aid, sid, Mark.CORRECT)
        review.submit_review(s, listener_id, aid)


def _submitted(url: str) -> set[int]:
    with session_scope(url) as s:
        return set(s.scalars(select(Review.assignment_id).where(Review.status == ReviewStatus.SUBMITTED)))


def test_a_backup_made_during_writes_restores_every_submitted_review(tmp_path, db_url):
    world = build_world(tmp_path, url=db_url, calls=6, listeners=2, with_audio=False)
    anna, boris = world.listener_ids[:2]
    _submit(db_url, anna, world.assignment_ids["anna"][0])
    started, stop, errors = threading.Event(), threading.Event(), []

    def listener() -> None:  # boris keeps marking and submitting while the owner backs up
        try:
            for aid in world.assignment_ids["boris"]:
                _submit(db_url, boris, aid)
                started.set()
                if stop.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    writer = threading.Thread(target=listener)
    writer.start()
    assert started.wait(60)
    before = _submitted(db_url)
    out = tmp_path / "backups" / "monday.bak"
    made = backups.backup(db_url, out)
    stop.set()
    writer.join(60)
    assert not errors
    assert out.stat().st_mode & 0o077 == 0 and made.counts["reviews"] >= len(before)
    with pytest.raises(backups.BackupError, match="never overwrites"):
        backups.backup(db_url, out)
    with session_scope(db_url) as s:
        assert backups.last_backup(s).path == str(out.resolve())

    # A bad day: reviews are lost. The restore brings back every review submitted before the backup.
    with session_scope(db_url) as s:
        s.execute(StepMark.__table__.delete())
        s.execute(Review.__table__.delete())
    restored, kept = backups.restore(db_url, out, keep_dir=tmp_path / "kept")
    assert before <= _submitted(db_url) and restored.counts == made.counts
    assert kept is not None and kept.counts["reviews"] == 0  # the database it replaced is kept too
    assert backups.verify(out).schema == made.schema  # integrity and schema check again after the round trip


def test_a_damaged_or_foreign_backup_is_refused_and_nothing_replaced(tmp_path, db_url):
    world = build_world(tmp_path, url=db_url, calls=2, listeners=1, with_audio=False)
    _submit(db_url, world.listener_ids[0], world.assignment_ids["anna"][0])
    good = backups.backup(db_url, tmp_path / "good.bak").path
    damaged = tmp_path / "damaged.bak"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a backup")
    for bad in (damaged, foreign, tmp_path / "missing.bak"):
        with pytest.raises(backups.BackupError, match=bad.name):
            backups.restore(db_url, bad)
    assert _submitted(db_url) == {world.assignment_ids["anna"][0]}
    assert not list(tmp_path.glob("before-restore-*"))


def test_backup_and_restore_commands(tmp_path, monkeypatch):
    from pipeline import cli

    world = build_world(tmp_path, calls=2, listeners=1, with_audio=False)
    monkeypatch.setenv("CALLREVIEW_DATABASE_URL", world.url)
    _submit(world.url, world.listener_ids[0], world.assignment_ids["anna"][0])
    runner = CliRunner()
    out = runner.invoke(cli.app, ["backup", str(tmp_path / "b.db")])
    assert out.exit_code == 0 and "reviews 1" in out.output, out.output
    out = runner.invoke(cli.app, ["restore", str(tmp_path / "nothing.db"), "--yes"])
    assert out.exit_code == 1 and "nothing.db" in out.output
    out = runner.invoke(cli.app, ["restore", str(tmp_path / "b.db")], input="n\n")
    assert out.exit_code != 0 and "reviews 1" in out.output  # shown, then not confirmed
    out = runner.invoke(cli.app, ["restore", str(tmp_path / "b.db"), "--yes"])
    assert out.exit_code == 0 and "restored" in out.output, out.output
    with session_scope(world.url) as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 1
