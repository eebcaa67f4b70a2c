"""What the command modules share: settings with the user's flags on top, the
migrated database, the error exit, and the options several commands take."""

from __future__ import annotations

from contextlib import contextmanager
from typing import get_args

import typer

from pipeline.config import SpeakersMode, get_settings


def fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@contextmanager
def user_errors(*kinds: type[Exception]):
    """A problem the user can mend (a bad file, an unknown name, a script that
    does not parse): said in one line, exit code 2, no traceback."""
    from pipeline.errors import CallreviewError

    try:
        yield
    except kinds or (CallreviewError,) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def settings_with(**overrides):
    """Settings from the environment, with the flags the user gave on top."""
    base = get_settings()
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def migrated_settings():
    """Settings, with their database migrated to the newest schema."""
    from pipeline.storage.store import migrated

    settings = get_settings()
    migrated(settings.db_url)
    return settings


WORKERS = typer.Option(None, "--workers", "-j", help="Local processes working in parallel, each with the model loaded once (default: one per two cores; each runs two transcription streams).")
SCHEDULER = typer.Option(None, "--scheduler", help="Run on a Dask cluster instead: the scheduler's address, e.g. tcp://10.0.0.5:8786. Workers need the package, the audio (same path or an s3:// URL) and the database (DATABASE_URL, PostgreSQL).")
OPERATOR_CHANNEL = typer.Option(None, "--operator-channel", help="Which stereo channel is the operator: left or right (default: left, or CALLREVIEW_OPERATOR_CHANNEL).")
def _speakers(value: str | None) -> str | None:
    modes = get_args(SpeakersMode)
    if value is not None and value not in modes:
        raise typer.BadParameter(f"'{value}': use {', '.join(modes[:-1])} or {modes[-1]}")
    return value


SPEAKERS = typer.Option(
    None, "--speakers", callback=_speakers,
    help="voice: one speaker per channel, a mono call (or two identical channels) is split into operator and client by voice, "
    "unless it holds one voice only (default); "
    "channels: the same, but a mono call is one 'unknown' speaker; "
    "stereo: force a speaker per channel however alike the channels are; "
    "mono: force the channels to be mixed down and split by voice (CALLREVIEW_SPEAKERS).",
)
MODEL = typer.Option(None, "--model", help="Whisper model: base (bundled), a CTranslate2 folder, a .pt checkpoint, or a name to download with --allow-download.")
ENGINE = typer.Option(None, "--engine", help="faster-whisper (default) or openai-whisper.")
