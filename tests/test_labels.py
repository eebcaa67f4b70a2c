"""What the owner reads on the pages is Russian: real errors from the pipeline,
raised by real calls, come out in Russian with their file and names kept."""

from __future__ import annotations

import re

import pytest
from seed_reports import seed

from pipeline.errors import CallreviewError
from pipeline.reports import outcomes, sampling, situations
from pipeline.review import accounts
from pipeline.speech import audio
from pipeline.speech.chat import parse_chat
from pipeline.storage.store import session_scope
from review_app import labels

ENGLISH = re.compile(r"\b(the|not|file|cannot|use|no|is|with|found|already|must|choose|script|version)\b", re.IGNORECASE)


def _raised(fn, *args, **kwargs) -> CallreviewError:
    with pytest.raises(CallreviewError) as err:
        fn(*args, **kwargs)
    return err.value


def test_pipeline_errors_are_shown_in_russian(db_url, tmp_path):
    seed(db_url)
    empty, text = tmp_path / "empty.wav", tmp_path / "notes.mp3"
    empty.write_bytes(b"")
    text.write_text("not audio at all", encoding="utf-8")
    with session_scope(db_url) as s:
        errors = [
            _raised(accounts.add_user, s, "anna", "listener", "123"),
            _raised(accounts.add_user, s, "lena", "listener", "secret-pass"),
            _raised(accounts.get_user, s, "nobody"),
            _raised(situations.mark_covered, s, ["mark:1"], "sales", 7),
            _raised(situations.mark_covered, s, [], "sales", 1),
            _raised(sampling.sample_and_assign, s, listeners=["bob"]),
        ]
    errors += [
        _raised(sampling.plan_assignments, [1], []),
        _raised(sampling.plan_assignments, [1], [100], overlap_share=0.5),
        _raised(outcomes.read_crm_csv, "Файл;Итог\nx.mp3;заказ\n", outcomes.ColumnMapping(call="Звонок", outcome="Итог"), "crm.csv"),
        _raised(audio.probe, empty),
        _raised(audio.probe, text),
        _raised(parse_chat, "time,author,text\n1,Посетитель,\n", "chat.csv"),
        "a.mp3: same audio as b.mp3, stored before",
    ]
    shown = [labels.error(e) for e in errors]
    for original, ru in zip(errors, shown):
        unquoted = re.sub(r"«[^»]*»", "", ru)  # names the owner gave stay as they are
        assert re.search("[а-яё]", ru) and not ENGLISH.search(unquoted), (str(original), ru)
    assert "«anna»" in shown[0] and "8" in shown[0]
    assert shown[9].startswith("empty.wav:") and shown[10].startswith("notes.mp3:")
    assert "Звонок" in shown[8]  # the column the owner named is kept


def test_an_unknown_error_is_a_plain_russian_sentence_and_is_logged(caplog):
    shown = labels.error(RuntimeError("report.csv: something nobody foresaw"))
    assert shown == "report.csv: не удалось выполнить действие; подробности — в журнале сервера."
    assert "something nobody foresaw" in caplog.text
