"""Backup and restore of the whole database, while the app runs: the owner's
insurance against a broken disk or a bad migration.

SQLite: the online backup API copies one consistent snapshot while the app
keeps writing (WAL readers never block writers). PostgreSQL: ``pg_dump`` in
its custom format, also one snapshot. A restore checks the backup first
(integrity, schema version, row counts), keeps a backup of the database it is
about to replace, and replaces nothing unless every check passes.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from pipeline.errors import CallreviewError
from pipeline.storage.store import BackupRow, alembic_config, session_scope, upgrade, utcnow

# Tables whose rows a restore reports and checks: what the owner would miss.
COUNTED = ("users", "recordings", "assignments", "reviews", "step_marks", "off_script_moments", "audit_events")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_MAGIC = b"PGDMP"


class BackupError(CallreviewError):
    """A backup cannot be made, read, or restored; nothing was replaced."""


@dataclass(frozen=True)
class BackupCheck:
    """What a backup holds, once it passed the checks."""

    path: Path
    kind: str  # sqlite | postgresql
    schema: str  # Alembic revision
    counts: dict[str, int]


def _sqlite_file(url: str) -> Path | None:
    u = make_url(url)
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") else None


def _pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: on PATH, else Debian's newest server bindir."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools (Debian: postgresql-client).")
    return found


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(args: list[str], what: str) -> str:
    try:
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as exc:
        raise BackupError(f"{what} failed: {exc.stderr.strip() or exc}") from exc


def _known_revisions() -> set[str]:
    return {r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def verify(path: Path) -> BackupCheck:
    """Check a backup file without touching any database: it is a whole SQLite
    database passing ``PRAGMA integrity_check`` or a readable pg_dump archive,
    from a schema this version of callreview knows; with its row counts."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc.strerror}).") from exc
    if head.startswith(_SQLITE_MAGIC):
        kind, schema, counts = "sqlite", *_check_sqlite(path)
    elif head.startswith(_PG_MAGIC):
        kind, schema, counts = "postgresql", *_check_pg_archive(path)
    else:
        raise BackupError(f"{path}: not a callreview backup (neither an SQLite database nor a pg_dump archive).")
    if schema not in _known_revisions():
        raise BackupError(f"{path}: schema version {schema!r} is unknown to this callreview (made by a newer one?).")
    return BackupCheck(path, kind, schema, counts)


def _check_sqlite(path: Path) -> tuple[str, dict[str, int]]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            problems = [r[0] for r in db.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"{path}: the database copy is damaged: {'; '.join(problems[:3])}")
            schema = db.execute("SELECT version_num FROM alembic_version").fetchone()
            counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED}  # noqa: S608 (fixed names)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a readable callreview database ({exc}).") from exc
    if schema is None:
        raise BackupError(f"{path}: no schema version recorded; not a callreview database.")
    return schema[0], counts


def _check_pg_archive(path: Path) -> tuple[str, dict[str, int]]:
    """Read the archive's data for the version and the counted tables (COPY blocks)."""
    tables = [t for name in ("alembic_version", *COUNTED) for t in ("-t", name)]
    sql = _run([_pg_tool("pg_restore"), "--data-only", "-f", "-", *tables, str(path)], f"{path}: reading the pg_dump archive")
    rows: dict[str, list[str]] = {}
    for m in re.finditer(r"^COPY public\.(\w+) .*? FROM stdin;\n(.*?)^\\\.$", sql, re.MULTILINE | re.DOTALL):
        rows[m.group(1)] = m.group(2).splitlines()
    if not rows.get("alembic_version"):
        raise BackupError(f"{path}: no schema version in the archive; not a callreview backup.")
    return rows["alembic_version"][0].strip(), {t: len(rows.get(t, [])) for t in COUNTED}


def backup(url: str, out: Path) -> BackupCheck:
    """Write a consistent copy of the database at ``url`` to ``out`` (never
    overwritten, 0600), check it, and note it for the owner's page."""
    out = Path(out)
    if out.exists():
        raise BackupError(f"{out} already exists: a backup never overwrites a file; choose a new name.")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        source = _sqlite_file(url)
        if source is not None:
            with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(part)) as dst:
                src.backup(dst)  # one step: one snapshot, while writers go on (WAL)
        else:
            _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(part), _pg_dsn(url)], "pg_dump")
        check = verify(part)
        part.rename(out)
    finally:
        part.unlink(missing_ok=True)
    with session_scope(url) as s:
        s.add(BackupRow(path=str(out.resolve()), size=out.stat().st_size, schema=check.schema,
                        reviews=check.counts["reviews"]))
    return replace(check, path=out)


def restore(url: str, path: Path, keep_dir: Path | None = None) -> tuple[BackupCheck, BackupCheck | None]:
    """Replace the database at ``url`` with the backup at ``path``, once it
    passed ``verify``: first a backup of the current database is kept (in
    ``keep_dir``, default beside the backup), then the copy goes in as a whole
    (SQLite's backup API; ``pg_restore --single-transaction``), then the schema
    is brought up to date. Returns the restored backup's check and the kept one."""
    check = verify(path)
    target = _sqlite_file(url)
    if (target is None) != (check.kind == "postgresql"):
        raise BackupError(f"{path} is a {check.kind} backup; the database at {make_url(url).render_as_string()} is not.")
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    kept = None
    if target is None or target.exists():
        keep = Path(keep_dir or Path(path).parent) / f"before-restore-{stamp}{'.db' if target else '.dump'}"
        kept = backup(url, keep)
    if target is not None:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as src, closing(sqlite3.connect(target, timeout=30)) as dst:
            src.backup(dst)
    else:
        _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "-d", _pg_dsn(url), str(path)], "pg_restore")
    upgrade(url)
    return check, kept


def last_backup(session: Session) -> BackupRow | None:
    """The newest backup made with ``backup`` (shown on the owner's page)."""
    return session.scalar(select(BackupRow).order_by(BackupRow.at.desc()).limit(1))
