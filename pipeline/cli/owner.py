"""Commands for the owner: reports, sampling, CRM outcomes, accounts, queues,
and serving the review app with its upload worker."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.common import fail, migrated_settings, settings_with, user_errors
from pipeline.vocabulary import AuditAction, SaleOutcome

app = typer.Typer()


_REPORT_KINDS = "steps, machine-steps, funnel, chats, worst-chats, versions, operators, operator-steps, operator-trend, conversation, conversation-calls, " \
    "outcomes, listeners, agreement, disagreements, throughput, situations, or all"


@app.command()
def report(
    kind: str = typer.Argument(..., help=f"Which report: {_REPORT_KINDS}."),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, xlsx or html."),
    out: Path = typer.Option(None, "--out", "-o", help="File to write; CSV and HTML go to the screen without it."),
) -> None:
    """The owner's reports outside the app: the same tables as the report pages."""
    from pipeline.reports import export, reports
    from pipeline.reports.data import load
    from pipeline.storage.store import session_scope

    settings = migrated_settings()
    with user_errors(), session_scope(settings.db_url) as session:
        if kind == "all":
            data = load(session)
            blob = export.tables({k: reports.build(k, session, data) for k in reports.REPORTS}, fmt)
        else:
            blob = export.table(reports.build(kind, session), fmt, kind)
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

    from pipeline.reports import sampling
    from pipeline.storage.store import session_scope

    settings = migrated_settings()
    rules = sampling.PriorityRules(low_adherence, no_order, short, priority_share)
    with user_errors(), session_scope(settings.db_url) as session:
        res = sampling.sample_and_assign(session, n, confidence, margin, rules, listener, overlap, gold, seed, dry_run)
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
    from pipeline.reports import outcomes
    from pipeline.storage.store import session_scope

    values = {}
    for v in value:
        raw, _, canon = v.partition("=")
        if canon not in tuple(SaleOutcome):
            raise typer.BadParameter(f"--value {v!r}: write RAW=order, RAW=no_order, RAW=cancelled or RAW=other")
        values[raw] = canon
    mapping = outcomes.ColumnMapping(call=call, outcome=outcome, operator=operator, time=time, amount=amount, values=values)
    settings = migrated_settings()
    with user_errors(), session_scope(settings.db_url) as session:
        res = outcomes.import_csv(session, csv_file, mapping)
    typer.echo(f"{res.rows} rows: {res.created} new, {res.updated} updated; {res.matched} matched to recordings")
    if res.unmatched:
        shown = ", ".join(res.unmatched[:10]) + (" ..." if len(res.unmatched) > 10 else "")
        typer.echo(f"{len(res.unmatched)} not matched to any recording: {shown}")


checklists_app = typer.Typer(help="Sales scripts as stored, and what the aligner learned for them.", no_args_is_help=True)
app.add_typer(checklists_app, name="checklists")


@checklists_app.command("list")
def checklists_list() -> None:
    """Every stored script version: calls aligned with it, submitted reviews,
    and the examples learned from them (see `checklists examples`)."""
    from pipeline.storage import checklists
    from pipeline.storage.store import session_scope

    settings = migrated_settings()
    with session_scope(settings.db_url) as session:
        rows = checklists.version_summaries(session)
    if not rows:
        typer.echo("no script stored yet: `callreview process CALLS --checklist SCRIPT.yaml` stores the one it aligns with")
    for r in rows:
        typer.echo(f"{r.checklist_id:<24} v{r.version:<3} {r.sha256[:8]}  {r.aligned:>5} calls  {r.reviewed:>4} reviews  "
                   f"{r.learned:>4} learned" + (f" ({r.dropped} dropped)" if r.dropped else "") + f"  {r.title}")


@checklists_app.command("examples")
def checklists_examples(
    checklist: str = typer.Argument(..., help="The script: its YAML file (that exact version) or its id (the version stored last)."),
    drop: list[int] = typer.Option([], "--drop", help="Strike out example N of the list (repeat): later alignments stop learning from it."),
    restore: list[int] = typer.Option([], "--restore", help="Take a struck-out example N back (repeat)."),
) -> None:
    """List the phrasings listeners confirmed for a script version, numbered.

    Each confirmed step (with the sentence the aligner quoted) and each
    "not in script" moment from a submitted review is an example the next
    alignment of this version learns from (`process`, the upload worker),
    without editing the YAML. Drop a wrong one with --drop N."""
    from pipeline.errors import CallreviewError
    from pipeline.script.checklist import OFF_SCRIPT, load_checklist
    from pipeline.storage import checklists
    from pipeline.storage.store import session_scope

    settings = migrated_settings()
    with user_errors(), session_scope(settings.db_url) as session:
        if Path(checklist).suffix.lower() in (".yaml", ".yml"):
            version = checklists.stored_version(session, load_checklist(Path(checklist)))
        else:
            version = checklists.latest_version(session, checklist)
        if version is None:
            raise CallreviewError(f"{checklist}: no calls were aligned with this script yet, so nothing was learned")
        learned = checklists.learned_examples(session, version.id)
        for n in [*drop, *restore]:
            if not 1 <= n <= len(learned):
                raise CallreviewError(f"no example {n}: the list has {len(learned)}")
        for n, dropped in [*((n, True) for n in drop), *((n, False) for n in restore)]:
            checklists.set_dropped(session, version.id, learned[n - 1], dropped)
        if drop or restore:
            learned = checklists.learned_examples(session, version.id)
        typer.echo(f"{version.checklist_id} version {version.version} ({version.sha256[:8]}): {len(learned)} learned examples")
        for n, ex in enumerate(learned, 1):
            what = "not in script" if ex.key == OFF_SCRIPT else ex.key
            mark = "  [dropped]" if ex.dropped else ""
            typer.echo(f"{n:>4}  {what:<24} x{ex.reviews:<3} {ex.text}{mark}")


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

    settings = migrated_settings()
    with user_errors(), session_scope(settings.db_url) as session:
        accounts.add_user(session, name, role, password, rate=rate)
    typer.echo(f"added {role} {name}")


@users_app.command("list")
def users_list() -> None:
    """Show all accounts."""
    from pipeline.review import accounts
    from pipeline.storage.store import session_scope

    settings = migrated_settings()
    with session_scope(settings.db_url) as session:
        for u in accounts.list_users(session):
            locked = f"  login locked until {u.locked_until:%Y-%m-%d %H:%M} UTC" if u.locked_until else ""
            typer.echo(f"{u.id:>4}  {u.name:<20} {u.role:<9} {'active' if u.active else 'disabled':<9} rate {u.rate:g}{locked}")


@users_app.command("unlock")
def users_unlock(name: str = typer.Argument(..., help="Login name.")) -> None:
    """Let a user whose login was locked after wrong passwords try again at once."""
    from pipeline.review import accounts
    from pipeline.storage.store import session_scope

    settings = migrated_settings()
    with user_errors(), session_scope(settings.db_url) as session:
        accounts.unlock(session, accounts.get_user(session, name).id)
    typer.echo(f"unlocked {name}")


@app.command()
def backup(
    out: Path = typer.Argument(..., help="The backup file to write; never overwritten. SQLite: a copy of the database file; "
                               "PostgreSQL: a pg_dump archive."),
) -> None:
    """Copy the whole database while the app runs (one consistent snapshot), check
    the copy, and note it on the owner's page. Schedule it daily (README)."""
    from pipeline.storage import backups

    settings = migrated_settings()
    try:
        check = backups.backup(settings.db_url, out)
    except backups.BackupError as exc:
        fail(exc)
    typer.echo(f"backed up to {check.path} (schema {check.schema}; {_counts(check.counts)})")


@app.command()
def restore(
    backup_file: Path = typer.Argument(..., help="A file written by `callreview backup`."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before replacing the database."),
) -> None:
    """Replace the database with a backup. The backup is checked first (integrity,
    schema version, row counts) and the current database is itself backed up
    beside it (before-restore-*); nothing is replaced unless the checks pass.
    Stop `callreview serve` first, so no listener writes into the old data."""
    from pipeline.storage import backups

    settings = settings_with()
    try:
        check = backups.verify(backup_file)
        typer.echo(f"{backup_file}: {check.kind} backup, schema {check.schema}; {_counts(check.counts)}")
        if not yes:
            typer.confirm(f"Replace the database at {settings.db_url} with it?", abort=True)
        check, kept = backups.restore(settings.db_url, backup_file)
    except backups.BackupError as exc:
        fail(exc)
    typer.echo(f"restored {backup_file}" + (f"; the replaced database is kept in {kept.path}" if kept else ""))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table.replace('_', ' ')} {n}" for table, n in counts.items())


@app.command()
def audit(
    user: str = typer.Option(None, "--user", "-u", help="Only this user (or the name typed at a failed login)."),
    action: list[str] = typer.Option(None, "--action", "-a", help="Only these actions: " + ", ".join(AuditAction) + "."),
    limit: int = typer.Option(100, help="How many entries, newest first."),
) -> None:
    """The audit log: logins, failed and refused logins, logouts, and who opened,
    marked and submitted which assignment (times in UTC)."""
    from pipeline.review import audit as audit_log
    from pipeline.storage.store import session_scope

    unknown = sorted(set(action or ()) - set(AuditAction))
    if unknown:
        typer.echo(f"error: unknown action {', '.join(unknown)}; use {', '.join(AuditAction)}", err=True)
        raise typer.Exit(2)
    settings = migrated_settings()
    with session_scope(settings.db_url) as session:
        entries = audit_log.recent(session, limit=limit, user=user, actions=action or None)
    for e in entries:
        what = f"assignment {e.assignment_id}" if e.assignment_id is not None else ""
        typer.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.user:<20} {e.action:<14} {what:<16} {e.detail}  {e.address or 'local'}".rstrip())


@app.command()
def assign(
    listener: list[str] = typer.Option(..., "--listener", "-l", help="Listener name (repeat to deal calls round-robin)."),
    recording: list[int] = typer.Argument(None, help="Recording ids to assign (see `callreview status`)."),
    sample: int = typer.Option(None, help="Instead of ids: this many random aligned calls nobody has yet."),
    stratify: bool = typer.Option(False, help="With --sample: spread the sample across operators."),
    seed: int = typer.Option(None, help="With --sample: make the draw repeatable."),
) -> None:
    """Put calls into listeners' queues."""
    from pipeline.reports import sampling
    from pipeline.review import accounts, assignments, review
    settings = migrated_settings()
    if not recording and not sample:
        raise typer.BadParameter("give recording ids or --sample N")
    with user_errors(), review.write_session(settings.db_url) as session:
        ids = list(recording or []) or sampling.sample_recordings(session, sample, stratify=stratify, seed=seed)
        listener_ids = [accounts.get_user(session, n).id for n in listener]
        res = assignments.assign(session, ids, listener_ids, drawn_at_random=not recording)
    per = ", ".join(f"{k}: {v}" for k, v in res.per_listener.items()) or "none"
    typer.echo(f"assigned {res.created} ({per}); {res.skipped} already queued")


@app.command("demo-reviews")
def demo_reviews(
    folder: Path = typer.Argument(Path("data/demo"), exists=True, file_okay=False, help="The demo calls with their labels (*.json)."),
    listener: str = typer.Option("listener", help="The demo's listener login; one of its calls gets a review too."),
) -> None:
    """Demo data only: submit reviews made from the demo calls' reference labels (by
    the owner, `demo-listener` and the demo listener), so every report page has numbers.
    Run once after `process` and `assign`; a rerun does nothing."""
    from pipeline.reports import demo
    from pipeline.review.review import write_session

    settings = migrated_settings()
    with user_errors(), write_session(settings.db_url) as session:
        res = demo.seed_reviews(session, folder, listener)
    typer.echo(f"demo reviews submitted: {len(res.submitted)}" + (f"; not processed, so not reviewed: {', '.join(res.skipped)}"
                                                                  if res.skipped else ""))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8501, help="Port."),
) -> None:
    """Start the review app (listeners and owner) at http://HOST:PORT, with its upload worker.

    The worker (`process --watch`) runs as a separate process beside the server and
    stops with it: it transcribes and aligns what the owner uploads."""
    import os
    import subprocess
    import sys

    migrated_settings()
    # The worker that processes uploads runs beside the server, never inside it,
    # and ends with it (it watches for its parent, which exec keeps).
    subprocess.Popen([sys.executable, "-m", "pipeline.cli", "process", "--watch", "--exit-with-parent"])
    os.execv(sys.executable, serve_command(host, port))


def serve_command(host: str, port: int) -> list[str]:
    """The command line that serves the review app (also used by its browser tests)."""
    import sys

    server = Path(__file__).resolve().parents[2] / "review_app" / "server.py"
    return [sys.executable, "-m", "streamlit", "run", str(server), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
            # users see a plain message, never a traceback with server paths; the server log keeps the details
            "--client.showErrorDetails", "none"]
