"""`callreview` command line: thin commands over the pipeline functions.

Every command here is also reachable from Python and, where it makes sense,
from the review app; no logic lives only in this file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from pipeline.config import default_workers, get_settings
from pipeline.vocabulary import FileResult, RecordingStatus, SaleOutcome

app = typer.Typer(
    help="callreview: offline call review. Transcribe call recordings with Whisper, "
    "align them with your sales script, and let listeners review them blind.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


# --- transcription and models (pipeline/speech/transcribe.py, pipeline/speech/models.py) ---

def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@app.command()
def transcribe(
    audio_files: list[Path] = typer.Argument(..., help="Call recordings (wav, mp3, ogg, m4a, amr, ...)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for one <name>.json per recording (default: print, one file only)."),
    model: str = typer.Option(None, help="base (bundled), a model folder, a .pt checkpoint, or a name with --allow-download."),
    engine: str = typer.Option(None, help="faster-whisper (default) or openai-whisper (needs a .pt checkpoint)."),
    operator_channel: str = typer.Option(None, help="Which stereo channel is the operator: left or right."),
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
    settings = _settings(model=model, engine=engine, operator_channel=operator_channel, language=language, allow_download=allow_download)
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
        _fail(exc)
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
        _fail(exc)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB); use it with --engine openai-whisper --model {path}")


# --- database, ingest and processing (pipeline/storage/ingest.py) -------------------

def _settings(**overrides):
    """Settings from the environment, with the flags the user gave on top."""
    base = get_settings()
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _database():
    """Settings, with their database migrated to the newest schema."""
    from pipeline.storage.store import migrated

    settings = get_settings()
    migrated(settings.db_url)
    return settings


@app.command()
def init() -> None:
    """Create or upgrade the database (SQLite in data/ unless DATABASE_URL is set)."""
    settings = _database()
    typer.echo(f"database ready: {settings.db_url}")


def _run_batch(paths, checklist, operator, operator_channel, metadata, model, engine, workers=None, scheduler=None) -> None:
    from tqdm import tqdm

    from pipeline.errors import CallreviewError
    from pipeline.storage.runner import iter_process
    from pipeline.storage.sources import expand_paths, source_name

    settings = _settings(model=model, engine=engine)
    files = expand_paths(paths)
    if not files:
        raise typer.BadParameter("no audio files found in the given paths")
    workers = workers or default_workers()
    if workers < 1:
        raise typer.BadParameter("--workers must be 1 or more")
    tally: dict[str, int] = {}
    try:
        where = f"on the Dask cluster at {scheduler}" if scheduler else f"with {min(workers, len(files))} process(es)"
        with tqdm(total=len(files), unit="file", desc="processing") as bar:
            bar.write(f"{len(files)} file(s), {where}")
            for result in iter_process(files, settings, checklist, operator, operator_channel, metadata, workers, scheduler):
                tally[result.status] = tally.get(result.status, 0) + 1
                if result.status in (FileResult.FAILED, FileResult.BUSY, FileResult.DUPLICATE):
                    bar.write(f"{result.status}: {result.message}")
                bar.set_postfix_str(source_name(result.path))
                bar.update(1)
    except (CallreviewError, OSError) as exc:  # OSError: e.g. the Dask scheduler cannot be reached
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(", ".join(f"{n} {status}" for status, n in sorted(tally.items())))
    if tally.get(FileResult.FAILED):
        raise typer.Exit(1)


_WORKERS = typer.Option(None, "--workers", "-j", help="Local processes working in parallel, each with the model loaded once (default: one per two cores; each runs two transcription streams).")
_SCHEDULER = typer.Option(None, "--scheduler", help="Run on a Dask cluster instead: the scheduler's address, e.g. tcp://10.0.0.5:8786. Workers need the package, the audio (same path or an s3:// URL) and the database (DATABASE_URL, PostgreSQL).")
_OPERATOR_CHANNEL = typer.Option(None, "--operator-channel", help="Which stereo channel is the operator: left or right (default: left, or CALLREVIEW_OPERATOR_CHANNEL).")
_MODEL = typer.Option(None, "--model", help="Whisper model: base (bundled), a CTranslate2 folder, a .pt checkpoint, or a name to download with --allow-download.")
_ENGINE = typer.Option(None, "--engine", help="faster-whisper (default) or openai-whisper.")


@app.command()
def ingest(
    paths: list[str] = typer.Argument(..., help="Audio files or folders (searched recursively), or fsspec URLs (s3://bucket/calls/)."),
    operator: str = typer.Option(None, "--operator", help="Operator name for all these files (kept from listeners)."),
    metadata: Path = typer.Option(None, "--metadata", exists=True, dir_okay=False, help="CSV with a 'file' column plus operator, phone, date, ... per file."),
    operator_channel: str = _OPERATOR_CHANNEL,
    model: str = _MODEL,
    engine: str = _ENGINE,
    workers: int = _WORKERS,
    scheduler: str = _SCHEDULER,
) -> None:
    """Store recordings and transcribe them into the database.

    Files are deduplicated by content, so a rerun skips finished ones and
    resumes after a crash; a bad file is recorded with its reason and the
    batch goes on (exit code 1 at the end if any failed).
    """
    _run_batch(paths, None, operator, operator_channel, metadata, model, engine, workers, scheduler)


@app.command()
def process(
    paths: list[str] = typer.Argument(None, help="Audio files or folders (searched recursively), or fsspec URLs (s3://bucket/calls/)."),
    checklist: Path = typer.Option(None, "--checklist", exists=True, dir_okay=False, help="Script YAML to align the calls with (required unless --watch)."),
    operator: str = typer.Option(None, "--operator", help="Operator name for all these files."),
    metadata: Path = typer.Option(None, "--metadata", exists=True, dir_okay=False, help="CSV with a 'file' column plus operator, phone, date, ..."),
    operator_channel: str = _OPERATOR_CHANNEL,
    model: str = _MODEL,
    engine: str = _ENGINE,
    workers: int = _WORKERS,
    scheduler: str = _SCHEDULER,
    watch: bool = typer.Option(False, "--watch", help="Keep running and process what the review app's upload page registers, each call with the script chosen there (`callreview serve` starts one). Stop with Ctrl+C."),
    exit_with_parent: bool = typer.Option(False, "--exit-with-parent", hidden=True),
) -> None:
    """Ingest + transcribe + align with a script, all saved in the database; or, with
    --watch, be the worker that processes uploads."""
    if watch:
        _watch(model, engine, exit_with_parent)
        return
    if not paths or checklist is None:
        raise typer.BadParameter("give the recordings and --checklist SCRIPT.yaml, or --watch")
    _run_batch(paths, checklist, operator, operator_channel, metadata, model, engine, workers, scheduler)


def _watch(model: str | None, engine: str | None, exit_with_parent: bool) -> None:
    import os

    from pipeline.storage.runner import watch
    from pipeline.storage.sources import source_name

    _database()
    settings = _settings(model=model, engine=engine)
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
    operator_channel: str = _OPERATOR_CHANNEL,
    model: str = _MODEL,
) -> None:
    """Align each input with the script and write JSON; nothing is stored (exit 1 if any input failed)."""
    from pipeline.errors import CallreviewError
    from pipeline.script.analyze import analyze_files
    from pipeline.script.checklist import load_checklist

    settings = _settings(operator_channel=operator_channel, model=model)
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
        _fail(exc)
    if failed:
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Recordings by status, and every failure with its reason."""
    from sqlalchemy import func, select

    from pipeline.storage.store import Recording, session_scope

    settings = _database()
    with session_scope(settings.db_url) as session:
        counts = session.execute(select(Recording.status, func.count()).group_by(Recording.status)).all()
        failures = session.execute(
            select(Recording.original_name, Recording.error).where(Recording.status == RecordingStatus.FAILED).order_by(Recording.id)
        ).all()
    if not counts:
        typer.echo("no recordings yet: run `callreview ingest FOLDER`")
        return
    for name, n in sorted(counts):
        typer.echo(f"{name:12} {n}")
    for name, error in failures:
        typer.echo(f"FAILED {name}: {error}")


# --- owner reports, sampling and CRM outcomes (pipeline/reports/reports.py, sampling.py, outcomes.py)

_REPORT_KINDS = "steps, funnel, versions, operators, operator-steps, operator-trend, conversation, conversation-calls, " \
    "outcomes, listeners, agreement, disagreements, throughput, situations, or all"


@app.command()
def report(
    kind: str = typer.Argument(..., help=f"Which report: {_REPORT_KINDS}."),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, xlsx or html."),
    out: Path = typer.Option(None, "--out", "-o", help="File to write; CSV and HTML go to the screen without it."),
) -> None:
    """The owner's reports outside the app: the same tables as the report pages."""
    from pipeline.errors import CallreviewError
    from pipeline.reports import export, reports
    from pipeline.reports.data import load
    from pipeline.storage.store import session_scope

    settings = _database()
    try:
        with session_scope(settings.db_url) as session:
            if kind == "all":
                data = load(session)
                blob = export.tables({k: reports.build(k, session, data) for k in reports.REPORTS}, fmt)
            else:
                blob = export.table(reports.build(kind, session), fmt, kind)
    except CallreviewError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if out is None and fmt == "xlsx":
        out = Path(f"{kind}.xlsx")
    if out is None:
        typer.echo(blob.decode("utf-8-sig"), nl=False)
    else:
        out.write_bytes(blob)
        typer.echo(f"wrote {out}", err=True)


@app.command()
def sample(
    n: int = typer.Option(None, "--n", help="How many calls; without it, enough for the confidence and margin."),
    confidence: float = typer.Option(0.95, help="Confidence level, e.g. 0.95."),
    margin: float = typer.Option(0.05, help="Margin of error, e.g. 0.05 for +-5%."),
    listener: list[str] = typer.Option([], "--listener", "-l", help="Listener name (repeat); all active listeners if none."),
    overlap: float = typer.Option(0.1, help="Share of sampled calls that a second listener also reviews."),
    gold: int = typer.Option(2, help="Gold calls (reviewed by the owner) mixed into each listener's queue."),
    low_adherence: float = typer.Option(0.6, help="Prioritise calls where the aligner found fewer steps than this share."),
    short: float = typer.Option(60.0, help="Prioritise calls shorter than this many seconds."),
    no_order: bool = typer.Option(True, "--no-order/--any-order", help="Prioritise calls the CRM says ended without an order."),
    priority_share: float = typer.Option(0.5, help="At most this share of each operator's quota goes to priority calls."),
    seed: int = typer.Option(0, help="Random seed, for a repeatable sample."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the sample without assigning it."),
) -> None:
    """Draw a sample of unassigned calls (stratified by operator) and put it in listeners' queues."""
    from collections import Counter

    from pipeline.errors import CallreviewError
    from pipeline.reports import sampling
    from pipeline.storage.store import session_scope

    settings = _database()
    rules = sampling.PriorityRules(low_adherence, no_order, short, priority_share)
    try:
        with session_scope(settings.db_url) as session:
            res = sampling.sample_and_assign(session, n, confidence, margin, rules, listener, overlap, gold, seed, dry_run)
    except CallreviewError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"unassigned calls: {res.population}; sample: {res.size} (confidence {confidence:.0%}, margin +-{margin:.0%})")
    for op, k in sorted(Counter(p.operator or "(unknown)" for p in res.picked).items()):
        typer.echo(f"  {op:20} {k}")
    flagged = Counter(r for p in res.picked for r in p.reasons)
    if flagged:
        typer.echo("priority: " + ", ".join(f"{r} {k}" for r, k in sorted(flagged.items())))
    per_listener = Counter((a.listener_id, a.is_gold) for a in res.plan.items)
    verb = "would assign" if dry_run else "assigned"
    typer.echo(f"{verb} {len(res.plan.items)} calls "
               f"({sum(k for (_, g), k in per_listener.items() if g)} gold) to {len({a.listener_id for a in res.plan.items})} listener(s)")


outcomes_app = typer.Typer(help="Sales outcomes from your CRM.", no_args_is_help=True)
app.add_typer(outcomes_app, name="outcomes")


@outcomes_app.command("import")
def outcomes_import(
    csv_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CRM export (CSV, comma or semicolon)."),
    call: str = typer.Option(..., help="Column with the call id or the recording's file name."),
    outcome: str = typer.Option(..., help="Column with the outcome (order / no order / cancelled)."),
    operator: str = typer.Option(None, help="Column with the operator."),
    time: str = typer.Option(None, help="Column with the call or order time."),
    amount: str = typer.Option(None, help="Column with the order amount."),
    value: list[str] = typer.Option([], help="Your CRM's word for an outcome, e.g. --value 'Сделка=order' (repeat)."),
) -> None:
    """Import a CRM CSV, matching rows to recordings by call id or file name."""
    from pipeline.errors import CallreviewError
    from pipeline.reports import outcomes
    from pipeline.storage.store import session_scope

    values = {}
    for v in value:
        raw, _, canon = v.partition("=")
        if canon not in tuple(SaleOutcome):
            raise typer.BadParameter(f"--value {v!r}: write RAW=order, RAW=no_order, RAW=cancelled or RAW=other")
        values[raw] = canon
    mapping = outcomes.ColumnMapping(call=call, outcome=outcome, operator=operator, time=time, amount=amount, values=values)
    settings = _database()
    try:
        with session_scope(settings.db_url) as session:
            res = outcomes.import_csv(session, csv_file, mapping)
    except CallreviewError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{res.rows} rows: {res.created} new, {res.updated} updated; {res.matched} matched to recordings")
    if res.unmatched:
        shown = ", ".join(res.unmatched[:10]) + (" ..." if len(res.unmatched) > 10 else "")
        typer.echo(f"{len(res.unmatched)} not matched to any recording: {shown}")


# --- review app: users, assignment, serve (pipeline/review/accounts.py, pipeline/review/review.py) --

users_app = typer.Typer(help="Owner and listener accounts for the review app.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option("listener", help="listener or owner."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="Asked for when not given (hidden)."),
    rate: float = typer.Option(0.0, help="Pay per submitted review (listeners)."),
) -> None:
    """Create an account (the password is stored as an argon2 hash)."""
    from pipeline.review import accounts
    from pipeline.storage.store import session_scope

    settings = _database()
    try:
        with session_scope(settings.db_url) as session:
            accounts.add_user(session, name, role, password, rate=rate)
    except accounts.AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"added {role} {name}")


@users_app.command("list")
def users_list() -> None:
    """Show all accounts."""
    from pipeline.review import accounts
    from pipeline.storage.store import session_scope

    settings = _database()
    with session_scope(settings.db_url) as session:
        for u in accounts.list_users(session):
            typer.echo(f"{u.id:>4}  {u.name:<20} {u.role:<9} {'active' if u.active else 'disabled':<9} rate {u.rate:g}")


@app.command()
def assign(
    listener: list[str] = typer.Option(..., "--listener", "-l", help="Listener name (repeat to deal calls round-robin)."),
    recording: list[int] = typer.Argument(None, help="Recording ids to assign (see `callreview status`)."),
    sample: int = typer.Option(None, help="Instead of ids: this many random aligned calls nobody has yet."),
    stratify: bool = typer.Option(False, help="With --sample: spread the sample across operators."),
    seed: int = typer.Option(None, help="With --sample: make the draw repeatable."),
) -> None:
    """Put calls into listeners' queues."""
    from pipeline.errors import CallreviewError
    from pipeline.reports import sampling
    from pipeline.review import accounts, assignments, review
    settings = _database()
    if not recording and not sample:
        raise typer.BadParameter("give recording ids or --sample N")
    try:
        with review.write_session(settings.db_url) as session:
            ids = list(recording or []) or sampling.sample_recordings(session, sample, stratify=stratify, seed=seed)
            listener_ids = [accounts.get_user(session, n).id for n in listener]
            res = assignments.assign(session, ids, listener_ids)
    except CallreviewError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    per = ", ".join(f"{k}: {v}" for k, v in res.per_listener.items()) or "none"
    typer.echo(f"assigned {res.created} ({per}); {res.skipped} already queued")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8501, help="Port."),
) -> None:
    """Start the review app (listeners and owner) at http://HOST:PORT, and beside it the
    worker that transcribes and aligns what the owner uploads (process --watch)."""
    import os
    import subprocess
    import sys

    _database()
    # The worker that processes uploads runs beside the server, never inside it,
    # and ends with it (it watches for its parent, which exec keeps).
    subprocess.Popen([sys.executable, "-m", "pipeline.cli", "process", "--watch", "--exit-with-parent"])
    os.execv(sys.executable, serve_command(host, port))


def serve_command(host: str, port: int) -> list[str]:
    """The command line that serves the review app (also used by its browser tests)."""
    import sys

    server = Path(__file__).resolve().parent.parent / "review_app" / "server.py"
    return [sys.executable, "-m", "streamlit", "run", str(server), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]


if __name__ == "__main__":  # `python -m pipeline.cli`: how `serve` starts the upload worker
    app()
