"""CRM CSV import: column mapping, value parsing, matching to recordings, re-import."""

import pytest
from seed_reports import CRM_CSV, seed
from sqlalchemy import select

from pipeline.errors import InputError
from pipeline.reports import outcomes
from pipeline.storage.store import Outcome, session_scope

MAPPING = outcomes.ColumnMapping(call="Файл", outcome="Результат", operator="Менеджер", time="Дата", amount="Сумма")


def test_parse_values():
    assert outcomes.parse_amount("1 500,00") == 1500.0
    assert outcomes.parse_amount("1,500.50") == 1500.5
    assert outcomes.parse_amount("3000 руб.") == 3000.0
    assert outcomes.parse_amount("") is None
    assert outcomes.parse_outcome("Заказ") == "order"
    assert outcomes.parse_outcome("нет заказа") == "no_order"
    assert outcomes.parse_outcome("Отменён") == "cancelled"
    assert outcomes.parse_outcome("Сделка", {"сделка": "order"}) == "order"
    assert outcomes.parse_outcome("перезвонить") == "other"
    t = outcomes.parse_time("02.11.2026 10:05")
    assert (t.year, t.month, t.day, t.hour, t.minute) == (2026, 11, 2, 10, 5)


def test_read_csv_semicolon_and_columns():
    assert outcomes.csv_columns(CRM_CSV) == ["Файл", "Менеджер", "Дата", "Результат", "Сумма"]
    recs = outcomes.read_crm_csv(CRM_CSV, MAPPING)
    assert [r.outcome for r in recs] == ["order", "no_order", "no_order", "order", "cancelled", "order"]
    assert recs[0].amount == 1500.0 and recs[0].operator == "Anna"
    with pytest.raises(InputError, match="no column 'Call'"):
        outcomes.read_crm_csv(CRM_CSV, outcomes.ColumnMapping(call="Call", outcome="Результат"))


def test_import_matches_by_name_stem_and_id(tmp_path, db_url):
    url = db_url
    ids = seed(url)
    path = tmp_path / "crm.csv"
    path.write_bytes(CRM_CSV.encode("cp1251"))  # as Russian Excel saves it
    with session_scope(url) as s:
        res = outcomes.import_csv(s, path, MAPPING)
    assert (res.rows, res.matched, res.created, res.updated) == (6, 5, 6, 0)
    assert res.unmatched == ["unknown.mp3"]
    with session_scope(url) as s:
        got = {o.call_ref: (o.recording_id, o.outcome, o.amount) for o in s.scalars(select(Outcome))}
    assert got["call_003"] == (ids["r3"], "no_order", None)  # matched without the extension
    assert got["call_005.mp3"] == (ids["r5"], "cancelled", 2000.0)
    # re-import: rows are replaced, not duplicated; a numeric call id matches the recording id
    again = f"Файл;Результат\ncall_001.mp3;отмена\n{ids['r2']};заказ\n"
    with session_scope(url) as s:
        res = outcomes.import_outcomes(s, outcomes.read_crm_csv(again, outcomes.ColumnMapping(call="Файл", outcome="Результат")))
    assert (res.created, res.updated, res.matched) == (1, 1, 2)
    with session_scope(url) as s:
        assert s.scalar(select(Outcome.outcome).where(Outcome.call_ref == "call_001.mp3")) == "cancelled"
        assert s.scalar(select(Outcome.recording_id).where(Outcome.call_ref == str(ids["r2"]))) == ids["r2"]
