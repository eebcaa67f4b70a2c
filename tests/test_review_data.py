"""Builders for review-app test data: real databases with recordings, masked-
worthy transcripts, alignments against the bundled script, users and queues.

Imported by the other ``test_review_*`` tests, ``test_browser.py`` and
``benchmarks/review_app_speed.py``; the one test here checks the builder itself.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from pipeline.script.result import AlignmentRecord, ChecklistRef, OffScript, StepResult
from pipeline.vocabulary import RecordingStatus, StepStatus

REPO = Path(__file__).resolve().parent.parent
CHECKLIST = REPO / "checklists" / "appliances-inbound.yaml"

# Identifying details that must never reach a listener page.
OPERATOR_NAME = "Ольга Смирнова"
SECRETS = {
    "operator": "Ольга",
    "operator_surname": "Смирнова",
    "phone": "912 345-67-89",
    "phone_digits": "9123456789",
    "card": "4276 1600 1234 5678",
    "email": "ivan.petrov@mail.ru",
    "file": "call_2024-03-05_olga_79123456789.wav",
}

# (speaker, text): one short inbound call touching most steps.
SCRIPT_CALL = [
    ("operator", "Добрый день, магазин Электрон, меня зовут Ольга, чем могу помочь?"),
    ("client", "Здравствуйте, я ищу холодильник."),
    ("operator", "Подскажите, сколько человек в семье, какой объём вам нужен?"),
    ("client", "Нас трое, нужен большой."),
    ("operator", "На какой бюджет вы рассчитываете?"),
    ("client", "Тысяч до шестидесяти."),
    ("operator", "Могу предложить модель с системой No Frost за 54 990 рублей, она тихая и экономичная."),
    ("client", "А доставка в Казань бывает по воскресеньям, и можно ли сдать старый холодильник?"),
    ("operator", "Давайте я уточню. Запишите мой номер +7 912 345-67-89 или пишите на ivan.petrov@mail.ru."),
    ("client", "Оплачу картой 4276 1600 1234 5678, Ольга, спасибо."),
    ("operator", "Оформим заказ на ваше имя? Всего доброго, спасибо за звонок!"),
]
STEP_IDS = ["greeting", "need", "budget", "offer", "objection", "cross_sell", "loyalty_card", "checkout", "farewell"]


def make_opus(path: Path, seconds: float = 20.0) -> Path:
    """A small Ogg/Opus listening copy (a tone) made with ffmpeg."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:a", "libopus", "-b:a", "24k", str(path)],
        check=True,
    )
    return path


def _checklist_version(session):
    from pipeline.script.checklist import load_checklist
    from pipeline.storage.checklists import store_checklist_version

    return store_checklist_version(session, load_checklist(CHECKLIST))


def add_call(session, name: str, operator: str = OPERATOR_NAME, listen_path: Path | None = None,
             repeat: int = 1, seconds_per_turn: float = 4.0) -> int:
    """A recording with transcript and alignment; ``repeat`` makes long calls."""
    from pipeline.storage.store import AlignmentRow, Recording, UtteranceRow

    turns = SCRIPT_CALL * repeat
    duration = len(turns) * seconds_per_turn
    rec = Recording(
        sha256=hashlib.sha256(name.encode()).hexdigest(), original_name=name, source_path=f"/incoming/{name}",
        listen_path=str(listen_path) if listen_path else None, duration=duration, channels=2, sample_rate=8000,
        operator=operator, source_meta={"caller": "+79123456789", "file": name}, status=RecordingStatus.ALIGNED,
        # one stretch of speech the transcriber got no words for
        coverage={"speech_s": duration * 0.8, "heard_s": duration * 0.8 - 4.0, "share": 1 - 4.0 / (duration * 0.8),
                  "unheard": [{"channel": 1, "start": 28.0, "end": 32.0, "reason": "unclear"}]},
    )
    session.add(rec)
    session.flush()
    session.add_all(
        UtteranceRow(recording_id=rec.id, idx=i, speaker=spk, channel=0 if spk == "operator" else 1,
                     start=i * seconds_per_turn, end=i * seconds_per_turn + seconds_per_turn - 0.5, text=text)
        for i, (spk, text) in enumerate(turns)
    )
    version = _checklist_version(session)
    found = {"greeting": 0, "need": 2, "budget": 4, "offer": 6, "farewell": 10}
    steps = [
        StepResult(id=sid, status=StepStatus.FOUND, utterances=[found[sid]], start=found[sid] * seconds_per_turn,
                   end=found[sid] * seconds_per_turn + 3.5, confidence=0.6 if sid == "budget" else 0.82)
        if sid in found else StepResult(id=sid, status=StepStatus.MISSING, confidence=0.2)
        for sid in STEP_IDS
    ]
    off_script = [OffScript(utterance=7, start=7 * seconds_per_turn, end=7 * seconds_per_turn + 3.5, text=SCRIPT_CALL[7][1], confidence=0.55)]
    ref = ChecklistRef(id=version.checklist_id, version=version.version, sha256=version.sha256)
    record = AlignmentRecord(file=name, checklist=ref, steps=steps, off_script=off_script)
    session.add(AlignmentRow(recording_id=rec.id, checklist_version_id=version.id, result=record.to_json()))
    session.flush()
    return rec.id


@dataclass
class World:
    url: str
    data_dir: Path
    owner_id: int
    listener_ids: list[int]
    assignment_ids: dict[str, list[int]]  # listener name -> assignments
    password: str = "secret-pass"


def build_world(tmp: Path, url: str | None = None, calls: int = 3, listeners: int = 2, with_audio: bool = True) -> World:
    """A migrated database with an owner, listeners ``anna``, ``boris``... and calls dealt to them."""
    from pipeline.review import accounts, assignments
    from pipeline.storage.store import session_scope, upgrade

    url = url or f"sqlite:///{tmp / 'callreview.db'}"
    upgrade(url)
    data_dir = tmp / "data"
    audio = make_opus(data_dir / "audio" / "listen.ogg") if with_audio else None
    names = ["anna", "boris", "vera", "gleb"][:listeners]
    with session_scope(url) as s:
        owner = accounts.add_user(s, "owner", "owner", "secret-pass")
        users = [accounts.add_user(s, n, "listener", "secret-pass", rate=50.0) for n in names]
        rec_ids = [add_call(s, f"call_{i}_{SECRETS['file']}", listen_path=audio) for i in range(calls)]
        assignment_ids = {}
        for u in users:
            assignments.assign(s, rec_ids, [u.id])
            from pipeline.storage.store import Assignment

            assignment_ids[u.name] = list(s.scalars(select(Assignment.id).where(Assignment.listener_id == u.id).order_by(Assignment.position)))
        return World(url, data_dir, owner.id, [u.id for u in users], assignment_ids)


def test_build_world(tmp_path):
    from pipeline.review import review
    from pipeline.storage.store import session_scope

    world = build_world(tmp_path, calls=2, listeners=1, with_audio=False)
    with session_scope(world.url) as s:
        queue = review.listener_queue(s, world.listener_ids[0])
    assert [q.status for q in queue] == ["new", "new"]
