"""Shared fixtures: real databases (a SQLite file and a throwaway PostgreSQL
server on 127.0.0.1), per-test settings, and offline guards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pgserver import new_pg_database, running_pg_server

# An accidental hub call must fail at once, never download.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_settings():
    """Settings are cached per process; clear them around each test so an
    environment a test sets (monkeypatch) is read, and never leaks into the next."""
    from pipeline.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- databases --------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server of our own: CALLREVIEW_TEST_PG_URL if set (a server
    you run), else a fresh cluster in a temp dir, started and stopped here."""
    url = os.environ.get("CALLREVIEW_TEST_PG_URL")
    if url:
        yield url.rstrip("/")
        return
    with running_pg_server() as url:
        yield url


def _new_database(request, folder: Path) -> str:
    """An empty, migrated database of the backend named by ``request.param``."""
    from pipeline.storage.store import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'callreview.db'}"
    else:
        url = new_pg_database(request.getfixturevalue("pg_server"))
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty, migrated database: each test that takes this runs on both backends."""
    return _new_database(request, tmp_path)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request, tmp_path_factory) -> str:
    """Like ``db_url``, shared by a module's tests (for an expensive seed)."""
    return _new_database(request, tmp_path_factory.mktemp("db"))


@pytest.fixture
def settings(tmp_path, db_url):
    """Settings for one test: its own data dir and database, defaults otherwise."""
    from pipeline.config import Settings

    return Settings(data_dir=tmp_path / "data", database_url=db_url)


# --- audio and transcription (tests/test_audio.py, test_transcribe.py, test_models.py) ---
# One Whisper model per test session: loading it is the slow part.

import sys as _sys


@pytest.fixture(scope="session")
def synth():
    """data/synthesize.py as a module (festival speech, calls, telephone line)."""
    _sys.path.insert(0, str(REPO / "data"))
    import synthesize

    return synthesize


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """The real model cache (CALLREVIEW_MODEL_CACHE or ~/.cache/callreview/models):
    the base model is reassembled there once, not per test run."""
    from pipeline.config import Settings

    return Settings().model_cache


@pytest.fixture(scope="session")
def transcriber(model_cache):
    """The shared Transcriber (bundled base model, int8 on the CPU)."""
    from pipeline.speech.transcribe import TranscribeOptions, get_transcriber

    return get_transcriber(TranscribeOptions(model_cache=str(model_cache), device="cpu"))


@pytest.fixture(scope="session")
def short_call(synth, tmp_path_factory):
    """A short stereo call (operator left, client right) and its reference turns."""
    turns = [
        ("operator", "Здравствуйте, магазин бытовой техники, меня зовут Анна, чем могу помочь?"),
        ("client", "Добрый день, я хотел узнать про доставку холодильника."),
        ("operator", "Доставка завтра, она бесплатная."),
        ("client", "Хорошо, спасибо."),
    ]
    audio, ref = synth.build_call(turns, seed=3)
    path = synth.write_call(tmp_path_factory.mktemp("call") / "short.wav", audio, synth.CALL_SR)
    return path, audio, ref
