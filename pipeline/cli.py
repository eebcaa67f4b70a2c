"""`callreview` command line: thin commands over the pipeline functions.

Every command here is also reachable from Python and, where it makes sense,
from the review app; no logic lives only in this file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from pipeline.config import get_settings

app = typer.Typer(
    help="callreview: offline call review. Transcribe call recordings with Whisper, "
    "align them with your sales script, and let listeners review them blind.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


# --- database, ingest and processing (pipeline/ingest.py) -------------------

def _settings(**overrides):
    """Settings from the environment, with the flags the user gave on top."""
    base = get_settings()
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


@app.command()
def init() -> None:
    """Create or upgrade the database (SQLite in data/ unless DATABASE_URL is set)."""
    from pipeline.store import upgrade

    settings = get_settings()
    upgrade(settings.db_url)
    typer.echo(f"database ready: {settings.db_url}")


def _run_batch(paths, checklist, operator, operator_channel, metadata, model, engine) -> None:
    from tqdm import tqdm

    from pipeline.errors import CallreviewError
    from pipeline.ingest import expand_paths, iter_process

    settings = _settings(model=model, engine=engine)
    files = expand_paths(paths)
    if not files:
        raise typer.BadParameter("no audio files found in the given paths")
    tally: dict[str, int] = {}
    try:
        with tqdm(total=len(files), unit="file", desc="processing") as bar:
            for result in iter_process(files, settings, checklist, operator, operator_channel, metadata):
                tally[result.status] = tally.get(result.status, 0) + 1
                if result.status in ("failed", "busy", "duplicate"):
                    bar.write(f"{result.status}: {result.message}")
                bar.set_postfix_str(Path(result.path).name)
                bar.update(1)
    except CallreviewError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(", ".join(f"{n} {status}" for status, n in sorted(tally.items())))
    if tally.get("failed"):
        raise typer.Exit(1)


_OPERATOR_CHANNEL = typer.Option(None, "--operator-channel", help="Which stereo channel is the operator: left or right (default: left, or CALLREVIEW_OPERATOR_CHANNEL).")
_MODEL = typer.Option(None, "--model", help="Whisper model: base (bundled), a CTranslate2 folder, a .pt checkpoint, or a name to download with --allow-download.")
_ENGINE = typer.Option(None, "--engine", help="faster-whisper (default) or openai-whisper.")


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    operator: str = typer.Option(None, "--operator", help="Operator name for all these files (kept from listeners)."),
    metadata: Path = typer.Option(None, "--metadata", exists=True, dir_okay=False, help="CSV with a 'file' column plus operator, phone, date, ... per file."),
    operator_channel: str = _OPERATOR_CHANNEL,
    model: str = _MODEL,
    engine: str = _ENGINE,
) -> None:
    """Store recordings and transcribe them into the database.

    Files are deduplicated by content, so a rerun skips finished ones and
    resumes after a crash; a bad file is recorded with its reason and the
    batch goes on (exit code 1 at the end if any failed).
    """
    _run_batch(paths, None, operator, operator_channel, metadata, model, engine)


@app.command()
def process(
    paths: list[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    checklist: Path = typer.Option(..., "--checklist", exists=True, dir_okay=False, help="Script YAML to align the calls with."),
    operator: str = typer.Option(None, "--operator", help="Operator name for all these files."),
    metadata: Path = typer.Option(None, "--metadata", exists=True, dir_okay=False, help="CSV with a 'file' column plus operator, phone, date, ..."),
    operator_channel: str = _OPERATOR_CHANNEL,
    model: str = _MODEL,
    engine: str = _ENGINE,
) -> None:
    """Ingest + transcribe + align with a script, all saved in the database."""
    _run_batch(paths, checklist, operator, operator_channel, metadata, model, engine)


@app.command()
def status() -> None:
    """Recordings by status, and every failure with its reason."""
    from sqlalchemy import func, select

    from pipeline.store import FAILED, Recording, session_scope, upgrade

    settings = get_settings()
    upgrade(settings.db_url)
    with session_scope(settings.db_url) as session:
        counts = session.execute(select(Recording.status, func.count()).group_by(Recording.status)).all()
        failures = session.execute(
            select(Recording.original_name, Recording.error).where(Recording.status == FAILED).order_by(Recording.id)
        ).all()
    if not counts:
        typer.echo("no recordings yet: run `callreview ingest FOLDER`")
        return
    for name, n in sorted(counts):
        typer.echo(f"{name:12} {n}")
    for name, error in failures:
        typer.echo(f"FAILED {name}: {error}")
