"""Sales outcomes from a CRM export: read a CSV with the user's column mapping,
match each row to a recording (by call id or file name) and store it in the
``outcomes`` table. The report that uses them is ``reports.outcomes_report``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import InputError
from pipeline.storage.store import Outcome, Recording, as_utc
from pipeline.vocabulary import SaleOutcome

# Words CRMs (Russian and English) use for each outcome, compared lower-cased.
OUTCOME_WORDS = {
    SaleOutcome.ORDER: ["order", "ordered", "sale", "sold", "won", "yes", "1", "true", "заказ", "оформлен", "продажа", "да", "успех", "оплачен"],
    SaleOutcome.NO_ORDER: ["no order", "no_order", "no sale", "lost", "no", "0", "false", "нет заказа", "без заказа", "отказ", "нет",
               "не купил"],
    SaleOutcome.CANCELLED: ["cancelled", "canceled", "cancel", "отмена", "отменен", "отменён", "отменено", "возврат"],
}


@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV column holds what; only ``call`` and ``outcome`` are required."""

    call: str
    outcome: str
    operator: str | None = None
    time: str | None = None
    amount: str | None = None
    # Extra raw value -> canonical outcome, for a CRM's own words ("Сделка" -> "order").
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutcomeRecord:
    call_ref: str
    outcome: str
    operator: str | None = None
    time: dt.datetime | None = None
    amount: float | None = None
    raw: dict = field(default_factory=dict)


def decode(data: bytes, name: str = "CSV") -> str:
    """CSV text in UTF-8 (with or without BOM) or, as Russian Excel saves it, cp1251."""
    for enc in ("utf-8-sig", "cp1251"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name}: cannot read the text encoding; save the CSV as UTF-8.")


def read_text(path: Path) -> str:
    return decode(Path(path).read_bytes(), str(path))


def csv_columns(text: str) -> list[str]:
    """The header row, so a page or the CLI can offer the columns to map."""
    reader = csv.reader(io.StringIO(text), dialect=_dialect(text))
    return next(reader, [])


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        return csv.excel


def parse_outcome(value: str, extra: dict[str, str] | None = None) -> str:
    v = (value or "").strip().lower().replace("ё", "е")
    for raw, canon in (extra or {}).items():
        if v == raw.strip().lower():
            return canon
    for canon, words in OUTCOME_WORDS.items():
        if v in (w.replace("ё", "е") for w in words):
            return canon
    return SaleOutcome.OTHER


def parse_amount(value: str | None) -> float | None:
    """'1 500,00', '1,500.00', '3000 руб.' -> float; blank -> None."""
    if value is None:
        return None
    v = re.sub(r"[^\d,.\-]", "", str(value).replace("\u00a0", ""))
    if not v:
        return None
    if "," in v and "." in v:
        v = v.replace(",", "") if v.rfind(".") > v.rfind(",") else v.replace(".", "").replace(",", ".")
    elif "," in v:
        v = v.replace(",", ".") if len(v.rsplit(",", 1)[1]) != 3 else v.replace(",", "")
    try:
        return float(v)
    except ValueError:
        return None


TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
                "%d/%m/%Y %H:%M", "%d/%m/%Y")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value or not value.strip():
        return None
    v = value.strip()
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        for fmt in TIME_FORMATS:
            try:
                t = dt.datetime.strptime(v, fmt)
                break
            except ValueError:
                continue
        else:
            return None
    return as_utc(t)


def read_crm_csv(text: str, mapping: ColumnMapping, source: str = "CSV") -> list[OutcomeRecord]:
    """Rows of a CRM export as outcome records; rows without a call reference are skipped."""
    reader = csv.DictReader(io.StringIO(text), dialect=_dialect(text))
    header = reader.fieldnames or []
    wanted = [c for c in (mapping.call, mapping.outcome, mapping.operator, mapping.time, mapping.amount) if c]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(f"{source}: no column {', '.join(repr(m) for m in missing)}; the file has {', '.join(header)}. "
                         "Map the columns to the names in the first row.")
    out = []
    for row in reader:
        ref = (row.get(mapping.call) or "").strip()
        if not ref:
            continue
        out.append(OutcomeRecord(
            call_ref=ref,
            outcome=parse_outcome(row.get(mapping.outcome, ""), mapping.values),
            operator=(row.get(mapping.operator) or "").strip() or None if mapping.operator else None,
            time=parse_time(row.get(mapping.time)) if mapping.time else None,
            amount=parse_amount(row.get(mapping.amount)) if mapping.amount else None,
            raw={k: v for k, v in row.items() if k is not None},
        ))
    return out


@dataclass
class ImportResult:
    rows: int
    matched: int
    created: int
    updated: int
    unmatched: list[str]


def _match_index(session: Session) -> dict[str, int]:
    """Every name a CRM may use for a recording: id, file name, name without extension."""
    index: dict[str, int] = {}
    for rid, name in session.execute(select(Recording.id, Recording.original_name)):
        index[str(rid)] = rid
        index[name.lower()] = rid
        index[Path(name).stem.lower()] = rid
    return index


def import_outcomes(session: Session, records: list[OutcomeRecord], source: str = "") -> ImportResult:
    """Store outcomes; a row for a call already imported replaces the old one."""
    index = _match_index(session)
    existing = {o.call_ref: o for o in session.scalars(select(Outcome))}
    result = ImportResult(len(records), 0, 0, 0, [])
    for r in records:
        ref = r.call_ref
        rid = index.get(ref.lower()) or index.get(Path(ref).name.lower()) or index.get(Path(ref).stem.lower())
        if rid is None:
            result.unmatched.append(ref)
        else:
            result.matched += 1
        row = existing.get(ref)
        if row is None:
            row = Outcome(call_ref=ref)
            session.add(row)
            existing[ref] = row
            result.created += 1
        else:
            result.updated += 1
        row.recording_id, row.outcome, row.operator, row.time = rid, r.outcome, r.operator, r.time
        row.amount, row.raw, row.source = r.amount, r.raw, source
    session.flush()
    return result


def import_csv(session: Session, path: Path, mapping: ColumnMapping) -> ImportResult:
    """Read and import a CRM CSV file in one step (the CLI and the page call this)."""
    return import_outcomes(session, read_crm_csv(read_text(path), mapping, source=str(path)), source=Path(path).name)
