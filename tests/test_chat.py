"""Chat logs (CSV and JSON) become transcripts and go through the same alignment,
and `callreview analyze` writes one JSON per input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import InputError
from pipeline.script.align import align
from pipeline.script.checklist import load_checklist
from pipeline.speech.chat import load_chat, parse_chat
from pipeline.speech.transcript import CLIENT, OPERATOR, UNKNOWN

ROOT = Path(__file__).resolve().parent.parent
CLOTHING = ROOT / "checklists" / "clothing-inbound.yaml"

CHAT_CSV = """time,author,text
2024-05-01 12:00:00,Посетитель,"Здравствуйте, есть платья на выпускной?"
2024-05-01 12:00:30,Консультант Мария,"Добрый день! Магазин Стиль, меня зовут Мария."
2024-05-01 12:00:41,Консультант Мария,Подскажите, какой цвет вам нравится и какой длины платье ищете?
2024-05-01 12:01:30,Посетитель,Голубое до колена
2024-05-01 12:01:50,Консультант Мария,"Какой размер вы обычно носите?"
2024-05-01 12:02:10,Посетитель,44
2024-05-01 12:03:00,Консультант Мария,"Есть голубое платье из шёлка, оно лёгкое и красиво сидит по фигуре."
2024-05-01 12:04:00,Консультант Мария,"Спасибо за обращение, хорошего дня!"
"""


def test_csv_chat_becomes_a_transcript(tmp_path):
    path = tmp_path / "chat.csv"
    path.write_text(CHAT_CSV, encoding="utf-8")
    transcript = load_chat(path)
    speakers = [u.speaker for u in transcript.utterances]
    assert speakers == [CLIENT, OPERATOR, OPERATOR, CLIENT, OPERATOR, CLIENT, OPERATOR, OPERATOR]
    assert transcript.utterances[0].start == 0.0 and transcript.utterances[1].start == 30.0
    # the unquoted comma inside the text column is kept
    assert transcript.utterances[2].text.startswith("Подскажите, какой цвет")
    assert transcript.model == "chat" and transcript.duration >= 240.0


def test_chat_log_goes_through_alignment(tmp_path):
    path = tmp_path / "chat.csv"
    path.write_text(CHAT_CSV, encoding="utf-8")
    result = align(load_chat(path), load_checklist(CLOTHING))
    found = {s.id for s in result.steps if s.status == "found"}
    assert {"greeting", "need", "size", "offer", "farewell"} <= found
    assert {"cross_sell", "loyalty_card"} <= set(result.missing)


def test_json_chat_with_operator_name_and_seconds():
    data = {
        "messages": [
            {"time": 0, "from": "Анна", "message": "Добрый день, магазин Стиль, Анна."},
            {"time": 12.5, "from": "ivan_1987", "message": "Привет"},
            {"time": "00:00:20", "from": "Анна", "message": "Какой размер вам нужен?"},
        ]
    }
    transcript = parse_chat(json.dumps(data, ensure_ascii=False), "chat.json", operator="анна")
    assert [u.speaker for u in transcript.utterances] == [OPERATOR, CLIENT, OPERATOR]
    assert [u.start for u in transcript.utterances] == [0.0, 12.5, 20.0]


def test_role_column_and_unknown_authors():
    text = "time;author;role;text\n10:00:00;A;operator;Здравствуйте\n10:00:05;B;client;Добрый день\n"
    assert [u.speaker for u in parse_chat(text, "c.csv").utterances] == [OPERATOR, CLIENT]
    text = "time,author,text\n1,Петя,Привет\n2,Вася,Здравствуйте\n"
    assert [u.speaker for u in parse_chat(text, "c.csv").utterances] == [UNKNOWN, UNKNOWN]


@pytest.mark.parametrize(
    "text, message",
    [
        ("time,author,text\nвчера,Оператор,Привет\n", "cannot read the time"),
        ("author,text\nОператор,Привет\n", "no time"),
        ("time,author,text\n", "no messages"),
        ('{"messages": [1, 2]}', "list of messages"),
        ('[{"time": 1,', "not valid JSON"),
    ],
)
def test_bad_chat_logs_say_what_is_wrong(text, message):
    with pytest.raises(InputError, match=message):
        parse_chat(text, "log.json" if text.lstrip().startswith(("[", "{")) else "log.csv")


def test_analyze_command_writes_one_json_per_input(tmp_path):
    chat = tmp_path / "chat.csv"
    chat.write_text(CHAT_CSV, encoding="utf-8")
    transcript = tmp_path / "call.json"
    transcript.write_text(json.dumps({
        "duration": 10.0, "language": "ru", "model": "base",
        "utterances": [
            {"speaker": "operator", "start": 0.2, "end": 3.9, "text": "Здравствуйте, магазин Стиль, меня зовут Оля."},
            {"speaker": "client", "start": 4.2, "end": 6.0, "text": "Мне нужна куртка."},
            {"speaker": "operator", "start": 6.5, "end": 9.5, "text": "Спасибо, что выбрали Стиль, всего доброго."},
        ],
    }, ensure_ascii=False), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(chat), str(transcript), str(broken), "--checklist", str(CLOTHING), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "broken.json" in result.output and "not valid JSON" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["call.json", "chat.json"]
    data = json.loads((out / "call.json").read_text(encoding="utf-8"))
    assert data["file"] == "call.json"
    assert data["checklist"]["id"] == "clothing-inbound" and len(data["checklist"]["sha256"]) == 64
    assert data["duration"] == 10.0
    assert data["utterances"][0] == {"i": 0, "speaker": "operator", "start": 0.2, "end": 3.9, "text": "Здравствуйте, магазин Стиль, меня зовут Оля."}
    steps = {s["id"]: s for s in data["steps"]}
    assert steps["greeting"]["status"] == "found" and steps["greeting"]["utterances"] == [0]
    assert steps["greeting"]["start"] == 0.2 and steps["greeting"]["end"] == 3.9
    assert steps["farewell"]["status"] == "found" and steps["size"]["status"] == "missing"


def test_analyze_reports_a_bad_checklist(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: X\nversion: 1\nsteps: []\n", encoding="utf-8")
    chat = tmp_path / "chat.csv"
    chat.write_text(CHAT_CSV, encoding="utf-8")
    result = CliRunner().invoke(app, ["analyze", str(chat), "--checklist", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "bad.yaml, line 4: field steps" in result.output


@pytest.mark.slow
def test_analyze_a_recording(short_call, tmp_path):
    """The audio path: decode + Whisper + alignment, on a short synthesized call."""
    from pipeline.script.analyze import analyze_files

    path, _, _ = short_call
    [r] = list(analyze_files([path], load_checklist(ROOT / "checklists" / "appliances-inbound.yaml"), tmp_path))
    assert r.error is None and r.output == tmp_path / "short.json"
    data = json.loads(r.output.read_text(encoding="utf-8"))
    assert data["file"] == "short.wav" and data["duration"] > 5
    assert {u["speaker"] for u in data["utterances"]} == {"operator", "client"}
    steps = {s["id"]: s for s in data["steps"]}
    assert steps["greeting"]["status"] == "found"
    assert steps["greeting"]["start"] < 2.0


SLOW_CSV = """time,author,text
2024-05-02 10:00:00,Посетитель,Добрый день. Есть куртки на осень?
2024-05-02 10:02:00,Консультант Мария,"Здравствуйте! Магазин Стиль, меня зовут Мария. Какой размер нужен?"
2024-05-02 10:03:00,Посетитель,48
2024-05-02 10:04:00,Консультант Мария,"Есть тёплая куртка из шерсти, спасибо за обращение!"
"""
MISSED_CSV = """time,author,text
2024-05-03 21:00:00,Посетитель,Здравствуйте! Вы работаете?
2024-05-03 21:05:00,Посетитель,Алло?
"""


def test_chat_exports_are_processed_like_calls_with_their_kpis(settings, tmp_path):
    """Chat exports go through `process` (no Whisper); the export's ratings come
    with `--metadata`; the operators' chat KPIs and the worst-rated chats follow."""
    from pipeline.reports import reports
    from pipeline.reports.data import load
    from pipeline.storage.runner import process_paths
    from pipeline.storage.store import Recording, session_scope

    folder = tmp_path / "chats"
    folder.mkdir()
    for name, text in (("fast.csv", CHAT_CSV), ("slow.csv", SLOW_CSV), ("missed.csv", MISSED_CSV), ("oleg.csv", CHAT_CSV),
                       ("broken.csv", "time,author\n1,x\n")):
        (folder / name).write_text(text.replace("Мария", "Олег") if name == "oleg.csv" else text, encoding="utf-8")
    meta = tmp_path / "chats_meta.csv"
    meta.write_text("file,operator,rating\nfast.csv,Мария,5\nslow.csv,Мария,2/5\nmissed.csv,Мария,1\noleg.csv,Олег,\n",
                    encoding="utf-8")
    results = process_paths(sorted(folder.glob("*.csv")), settings, checklist_path=CLOTHING, metadata_csv=meta)
    status = {Path(r.path).name: r.status for r in results}
    assert status == {"broken.csv": "failed", "fast.csv": "done", "missed.csv": "done", "oleg.csv": "done", "slow.csv": "done"}
    with session_scope(settings.db_url) as s:
        assert "no messages with text" in s.query(Recording).filter_by(original_name="broken.csv").one().error
        data = load(s)
    assert {c.kind for c in data.calls.values()} == {"chat"}

    df = reports.chats_report(data).set_index("operator")
    maria, oleg = df.loc["Мария"], df.loc["Олег"]
    # fast: first reply after 30 s, waits 30, 20 (12:01:30 -> 12:01:50), 50 (12:02:10 -> 12:03:00);
    # slow: 120 and 60; missed: never answered.
    assert (maria.chats, maria.missed, maria.rated_chats) == (3, 1, 3)
    assert maria.missed_share == pytest.approx(1 / 3)
    assert maria.first_response_time == pytest.approx((30 + 120) / 2)
    assert maria.avg_response_time == pytest.approx((100 / 3 + 90) / 2)
    assert maria.rating == pytest.approx((5 + 2 + 1) / 3)
    assert (oleg.chats, oleg.missed, oleg.rated_chats) == (1, 0, 0) and pd.isna(oleg.rating)

    worst = reports.worst_chats_report(data)
    assert list(worst["file"]) == ["missed.csv", "slow.csv", "fast.csv"]
    assert list(worst["missed"]) == [True, False, False] and list(worst["rating"]) == [1.0, 2.0, 5.0]
