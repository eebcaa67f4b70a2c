"""One home for settings: defaults that run with nothing set, overridable by
environment variables (``CALLREVIEW_*``, plus ``DATABASE_URL``) and CLI flags."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# How a batch's channels become speakers (--speakers; what each means: speech.transcribe.SPEAKER_MODES)
SpeakersMode = Literal["voice", "channels", "stereo", "mono"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLREVIEW_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "CALLREVIEW_DATABASE_URL"),
        description="SQLAlchemy URL; empty means a SQLite file in data_dir.",
    )
    # Transcription
    engine: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    model: str = Field(default="base", description="base, a model name (opt-in download), a folder or a .pt checkpoint")
    allow_download: bool = False
    model_cache: Path = Path.home() / ".cache" / "callreview" / "models"
    language: str = "ru"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    beam_size: int = Field(default=5, description="beam of the batched decoder (1: greedy, about 1.4x faster, less exact)")
    speakers: SpeakersMode = Field(
        default="voice",
        description="voice: one speaker per channel, a mono call is split into operator and client by voice; channels: the same, but a mono call "
        "is one 'unknown' speaker; stereo / mono: force the batch's layout (a speaker per channel / channels mixed and split by voice)",
    )
    window_s: float = Field(default=30.0, description="seconds of packed speech per decoded window, 5-30 (30 is Whisper's own; 20 is faster, less exact)")
    # Alignment: sentence scorers, "use+tfidf" (default) or "use+e5+tfidf"
    align_models: str = "use+tfidf"
    # Audio
    operator_channel: Literal["left", "right"] = "left"
    max_duration_s: float = 4 * 3600.0
    # Review app
    secret_key: str = Field(default="", description="HMAC key for cookies and audio URLs; generated into data_dir when empty")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'callreview.db').resolve()}"

    @property
    def audio_dir(self) -> Path:
        """Where listening copies (Opus) of ingested recordings live."""
        return self.data_dir / "audio"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def available_cores() -> int:
    """Cores this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1



def default_workers() -> int:
    """Local worker processes by default: one per two cores. The transcriber
    runs two one-thread streams itself, so a process per core would only
    split them (measured: 9.8 audio h per hour with one 2-core process, 8.8
    with two 1-core processes, docs/benchmarks.md)."""
    return max(1, available_cores() // 2)
