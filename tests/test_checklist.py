"""Checklist YAML: the shipped scripts load, and each kind of mistake is named
with its file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ChecklistError
from pipeline.script.checklist import load_checklist, parse_checklist
from pipeline.storage.checklists import store_checklist_version

ROOT = Path(__file__).resolve().parent.parent
APPLIANCES = ROOT / "checklists" / "appliances-inbound.yaml"

GOOD = """\
id: demo
title: Demo
version: 2
language: ru
steps:
  - id: greeting
    title: Приветствие
    examples:
      - Добрый день
  - id: farewell
    title: Прощание
    owner_note: extra fields are kept
    examples: [До свидания]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ChecklistError) as exc:
        load_checklist(path)
    message = str(exc.value)
    assert str(path) in message
    return message


def test_shipped_checklists_load():
    appliances = load_checklist(APPLIANCES)
    assert appliances.id == "appliances-inbound"
    assert appliances.step_ids == [
        "greeting", "need", "budget", "offer", "objection", "cross_sell", "loyalty_card", "checkout", "farewell",
    ]
    assert appliances.step("objection").anywhere
    assert all(s.examples for s in appliances.steps)
    clothing = load_checklist(ROOT / "checklists" / "clothing-inbound.yaml")
    assert clothing.id == "clothing-inbound" and clothing.language == "ru"


def test_extra_fields_are_kept_and_hashed(tmp_path):
    checklist = load_checklist(write(tmp_path, GOOD))
    assert checklist.steps[1].model_extra == {"owner_note": "extra fields are kept"}
    assert len(checklist.sha256) == 64
    other = parse_checklist(GOOD.replace("extra fields are kept", "changed"))
    assert other.sha256 != checklist.sha256


def test_hash_ignores_formatting_and_comments(tmp_path):
    reformatted = "# a comment\n" + GOOD.replace("    examples:\n      - Добрый день", "    examples: ['Добрый день']")
    assert parse_checklist(reformatted).sha256 == parse_checklist(GOOD).sha256


def test_missing_step_id(tmp_path):
    message = error_of(tmp_path, GOOD.replace("  - id: farewell\n", "  - \n"))
    assert "line 11" in message and "steps[1].id" in message and "missing" in message


def test_duplicate_step_id(tmp_path):
    message = error_of(tmp_path, GOOD.replace("id: farewell", "id: greeting"))
    assert "line 10" in message and "steps[1] (greeting).id" in message and "duplicate step id 'greeting'" in message


def test_empty_examples(tmp_path):
    message = error_of(tmp_path, GOOD.replace("examples: [До свидания]", "examples: []"))
    assert "line 13" in message and "steps[1] (farewell).examples" in message and "at least one" in message


def test_blank_example(tmp_path):
    message = error_of(tmp_path, GOOD.replace("- Добрый день", "- '  '"))
    assert "line 9" in message and "steps[0] (greeting).examples" in message and "empty" in message


def test_missing_top_level_field(tmp_path):
    message = error_of(tmp_path, GOOD.replace("title: Demo\n", ""))
    assert "line 1" in message and "field title" in message and "missing" in message


def test_wrong_type(tmp_path):
    message = error_of(tmp_path, GOOD.replace("version: 2", "version: second"))
    assert "line 3" in message and "field version" in message and "integer" in message


def test_bad_yaml(tmp_path):
    message = error_of(tmp_path, GOOD.replace("    title: Прощание", "  title: Прощание: [", 1))
    assert "not valid YAML" in message and "line 11" in message


def test_not_a_mapping(tmp_path):
    assert "mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_file_not_found(tmp_path):
    with pytest.raises(ChecklistError, match="not found"):
        load_checklist(tmp_path / "nope.yaml")


def test_store_checklist_version_get_or_create(tmp_path):
    from pipeline.storage.store import Base, ChecklistVersion, count, get_engine, session_scope

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Base.metadata.create_all(get_engine(url))
    checklist = load_checklist(APPLIANCES)
    with session_scope(url) as session:
        first = store_checklist_version(session, checklist)
        again = store_checklist_version(session, load_checklist(APPLIANCES))
        assert first.id == again.id
        assert first.sha256 == checklist.sha256 and first.version == checklist.version
        changed = checklist.model_copy(deep=True)
        changed.steps[0].examples.append("Алло, Электрон, слушаю.")
        assert store_checklist_version(session, changed).id != first.id
        assert count(session, ChecklistVersion, checklist_id="appliances-inbound") == 2
