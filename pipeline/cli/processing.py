"""Commands over the pipeline: transcribe and analyze files, manage Whisper
weights, and store, process and watch recordings in the database."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.common import ENGINE, MODEL, OPERATOR_CHANNEL, SCHEDULER, SPEAKERS, WORKERS, fail, migrated_settings, settings_with, user_errors
from pipeline.config import default_workers, get_settings
from pipeline.vocabulary import FileResult, RecordingStatus

app = typer.Typer()


@app.command()
def transcribe(
    audio_files: list[Path] = typer.Argument(..., help="Call recordings (wav, mp3, ogg, m4a, amr, ...)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for one <name>.json per recording (default: print, one file only)."),
    model: str = typer.Option(None, help="base (bundled), a model folder, a .pt checkpoint, or a name with --allow-download."),
    engine: str = typer.Option(None, help="faster-whisper (default) or openai-whisper (needs a .pt checkpoint)."),
    operator_channel: str = typer.Option(None, help="Which stereo channel is the operator: left or right."),
    speakers: str = SPEAKERS,
    language: str = typer.Option(None, help="Language code, or auto to detect (default ru)."),
    allow_download: bool = typer.Option(None, "--allow-download", help="Allow downloading a named model from the Hugging Face hub."),
    text: bool = typer.Option(False, "--text", help="Readable turns instead of JSON."),
) -> None:
    """Transcribe recordings without a database: speaker turns with word
    timestamps. Several files are transcribed in one batch (faster per call);
    a file that cannot be read is reported and the others go on."""
    import json

    from pipeline.errors import CallreviewError
    from pipeline.speech.transcribe import TranscribeOptions, transcribe_files

    if out is None and len(audio_files) > 1:
        raise typer.BadParameter("more than one recording: give --out FOLDER for their transcripts", param_hint="--out")
    settings = settings_with(model=model, engine=engine, operator_channel=operator_channel, language=language, allow_download=allow_download,
                             speakers=speakers)
    if out:
        out.mkdir(parents=True, exist_ok=True)
    failed = 0
    try:
        items = [(p, settings.operator_channel) for p in audio_files]
        for path, _, tr in transcribe_files(items, TranscribeOptions.from_settings(settings), settings.max_duration_s):
            if isinstance(tr, CallreviewError):
                failed += 1
                typer.echo(f"{path}: {tr}", err=True)
                continue
            if text:
                body = "\n".join(f"[{u.start:7.2f}-{u.end:7.2f}] {u.speaker:8} {u.text}" for u in tr.utterances)
            else:
                body = json.dumps(tr.to_dict(), ensure_ascii=False, indent=1)
            if out is None:
                typer.echo(body)
                continue
            dest = out / (path.stem + (".txt" if text else ".json"))
            dest.write_text(body + "\n", encoding="utf-8")
            typer.echo(f"{path.name}: {len(tr.utterances)} utterances, {tr.duration:.1f} s -> {dest}")
    except CallreviewError as exc:  # the model itself: nothing can be transcribed
        fail(exc)
    if failed:
        raise typer.Exit(1)


models_app = typer.Typer(help="Whisper weights: what is available offline, conversion for openai-whisper.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Models usable offline and where they are cached."""
    from pipeline.speech.models import DOWNLOADABLE, list_models

    settings = get_settings()
    typer.echo(f"cache: {settings.model_cache}")
    for row in list_models(settings.model_cache):
        typer.echo(f"  {row['name']:12} {row['kind']:4} {row['status']}")
    typer.echo(f"with --allow-download: {', '.join(DOWNLOADABLE)}")


@models_app.command("convert")
def models_convert(
    out: Path = typer.Option(..., "--out", help="Where to write the openai-whisper .pt checkpoint."),
    model: str = typer.Option("base", help="The CTranslate2 model to convert (base, or a float16/float32 folder)."),
) -> None:
    """Convert a CTranslate2 model into an openai-whisper checkpoint with the same weights."""
    from pipeline.errors import CallreviewError
    from pipeline.speech.models import convert_ct2_to_openai, resolve_model

    settings = get_settings()
    try:
        resolved = resolve_model(model, settings.model_cache, settings.allow_download)
        if resolved.kind != "ct2":
            raise typer.BadParameter(f"{model} is already a .pt checkpoint")
        path = convert_ct2_to_openai(resolved.path, out)
    except CallreviewError as exc:
        fail(exc)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB); use it with --engine openai-whisper --model {path}")


@app.command()
def init() -> None:
    """Create or upgrade the database (SQLite in data/ unless DATABASE_URL is set)."""
    settings = migrated_settings()
    typer.echo(f"database ready: {settings.db_url}")


def _run_batch(paths, checklist, operator, operator_channel, metadata, model, engine, workers=None, scheduler=None, speakers=None) -> None:
    from tqdm import tqdm

    from pipeline.errors import CallreviewError
    from pipeline.storage.runner import iter_process
    from pipeline.storage.sources import expand_paths, source_name

    settings = settings_with(model=model, engine=engine, speakers=speakers)
    files = expand_paths(paths)
    if not files:
        raise typer.BadParameter("no audio files found in the given paths")
    workers = workers or default_workers()
    if workers < 1:
        raise typer.BadParameter("--workers must be 1 or more")
    tally: dict[str, int] = {}
    with user_errors(CallreviewError, OSError):  # OSError: e.g. the Dask scheduler cannot be reached
        where = f"on the Dask cluster at {scheduler}" if scheduler else f"with {min(workers, len(files))} process(es)"
        with tqdm(total=len(files), unit="file", desc="processing") as bar:
            bar.write(f"{len(files)} file(s), {where}")
            for result in iter_process(files, settings, checklist, operator, operator_channel, metadata, workers, scheduler):
                tally[result.status] = tally.get(result.status, 0) + 1
                if result.status in (FileResult.FAILED, FileResult.BUSY, FileResult.DUPLICATE):
                    bar.write(f"{result.status}: {result.message}")
                bar.set_postfix_str(source_name(result.path))
                bar.update(1)
    typer.echo(", ".join(f"{n} {status}" for status, n in sorted(tally.items())))
    if tally.get(FileResult.FAILED):
        raise typer.Exit(1)


@app.command()
def ingest(
    paths: list[str] = typer.Argument(..., help="Audio files or folders (searched recursively), or fsspec URLs (s3://bucket/calls/)."),
    operator: str = typer.Option(None, "--operator", help="Operator name for all these files (kept from listeners)."),
    metadata: Path = typer.Option(None, "--metadata", exists=True, dir_okay=False, help="CSV with a 'file' column plus operator, phone, date, ... per file."),
    operator_channel: str = OPERATOR_CHANNEL,
    speakers: str = SPEAKERS,
    model: str = MODEL,
    engine: str = ENGINE,
    workers: int = WORKERS,
    scheduler: str = SCHEDULER,
) -> None:
    """Store recordings and transcribe them into the database.

    Files are deduplicated by content, so a rerun skips finished ones and
    resumes after a crash; a bad file is recorded with its reason and the
    batch goes on (exit code 1 at the end if any failed).
    """
    _run_batch(paths, None, operator, operator_channel, metadata, model, engine, workers, scheduler, speakers)


@app.command()
def process(
    paths: list[str] = typer.Argument(None, help="Audio files or folders (searched recursively), or fsspec URLs (s3://bucket/calls/)."),
    checklist: Path = typer.Option(None, "--checklist", exists=True, dir_okay=False, help="Script YAML to align the calls with (required unless --watch)."),
    operator: str = typer.Option(None, "--operator", help="Operator name for all these files."),
    metadata: Path = typer.Option(None, "--metadata", exists=True, dir_okay=False, help="CSV with a 'file' column plus operator, phone, date, ..."),
    operator_channel: str = OPERATOR_CHANNEL,
    speakers: str = SPEAKERS,
    model: str = MODEL,
    engine: str = ENGINE,
    workers: int = WORKERS,
    scheduler: str = SCHEDULER,
    watch: bool = typer.Option(False, "--watch", help="Keep running and process what the review app's upload page registers, each call with the script chosen there (`callreview serve` starts one). Stop with Ctrl+C."),
    exit_with_parent: bool = typer.Option(False, "--exit-with-parent", hidden=True),
) -> None:
    """Ingest + transcribe + align with a script, all saved in the database; --watch: process uploads.

    With --watch it is the worker beside the review app: it processes what the
    upload page registers, each call with the script chosen there."""
    if watch:
        _watch(model, engine, exit_with_parent)
        return
    if not paths or checklist is None:
        raise typer.BadParameter("give the recordings and --checklist SCRIPT.yaml, or --watch")
    _run_batch(paths, checklist, operator, operator_channel, metadata, model, engine, workers, scheduler, speakers)


def _watch(model: str | None, engine: str | None, exit_with_parent: bool) -> None:
    import os

    from pipeline.storage.runner import watch
    from pipeline.storage.sources import source_name

    migrated_settings()
    settings = settings_with(model=model, engine=engine)
    typer.echo(f"watching {settings.db_url} for uploads (Ctrl+C stops)")
    try:
        for result in watch(settings, parent=os.getppid() if exit_with_parent else None):
            message = f" ({result.message})" if result.message else ""
            typer.echo(f"{result.status}: {source_name(result.path)}{message}")
    except KeyboardInterrupt:
        pass


@app.command()
def analyze(
    inputs: list[Path] = typer.Argument(..., help="Recordings, transcript JSON files (the `transcribe` output) or chat logs (CSV/JSON with time, author, text)."),
    checklist: Path = typer.Option(..., "--checklist", help="Script YAML to align with (see checklists/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for one JSON per input (format: docs/output-format.md)."),
    operator: str = typer.Option(None, "--operator", help="In chat logs: the author name of the operator (else guessed from names like 'Оператор')."),
    operator_channel: str = OPERATOR_CHANNEL,
    speakers: str = SPEAKERS,
    model: str = MODEL,
) -> None:
    """Align each input with the script and write JSON; nothing is stored (exit 1 if any input failed)."""
    from pipeline.errors import CallreviewError
    from pipeline.script.analyze import analyze_files
    from pipeline.script.checklist import load_checklist

    settings = settings_with(operator_channel=operator_channel, model=model, speakers=speakers)
    try:
        script = load_checklist(checklist)
        failed = 0
        for r in analyze_files(inputs, script, out, settings, operator=operator):
            if r.error:
                failed += 1
                typer.echo(f"failed: {r.error}", err=True)
            else:
                found = sum(s.found for s in r.result.steps)
                typer.echo(f"{r.output}: {found}/{len(r.result.steps)} steps, {len(r.result.off_script)} off-script")
    except CallreviewError as exc:
        fail(exc)
    if failed:
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Recordings by status, every failure with its reason, and calls whose speech
    is under 90% transcribed (with where to listen)."""
    from sqlalchemy import func, select

    from pipeline.storage.ingest import low_coverage_calls
    from pipeline.storage.store import Recording, session_scope

    settings = migrated_settings()
    with session_scope(settings.db_url) as session:
        counts = session.execute(select(Recording.status, func.count()).group_by(Recording.status)).all()
        failures = session.execute(
            select(Recording.original_name, Recording.error).where(Recording.status == RecordingStatus.FAILED).order_by(Recording.id)
        ).all()
        low = low_coverage_calls(session)
    if not counts:
        typer.echo("no recordings yet: run `callreview ingest FOLDER`")
        return
    for name, n in sorted(counts):
        typer.echo(f"{name:12} {n}")
    for name, error in failures:
        typer.echo(f"FAILED {name}: {error}")
    for call in low:
        where = ", ".join(f"{s:.0f}-{e:.0f} s" + (f" ({why})" if why else "") for s, e, why in call.unheard[:5])
        typer.echo(f"LOW COVERAGE {call.name}: {call.share:.0%} of its speech got words; listen at {where}")
