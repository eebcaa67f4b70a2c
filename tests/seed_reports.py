"""A small database with known marks for the report tests; every number the
tests assert follows from the tables below.

Script ``sales`` v1: greet, needs, offer, close; v2 adds ``delivery`` before close.
Operators Anna (r1-r3) and Boris (r4-r6, r6 a chat); listeners lena (rate 10)
and max (rate 12); the owner reviews r1, which is a gold call in lena's queue;
r4 is an overlap call reviewed by max (first) and lena. r2, r3 and r4 were
drawn at random (R in the table); r1 and r5 were chosen on purpose.

  call  ver  aligner (F found, M missing)  reviews (c correct, i incorrect, n not in script)
  r1    1    F F F F                        owner c c c c   lena c c i c (gold)
  r2 R  1    F F F M                        lena  c n c c
  r3 R  1    F M M M                        max   c i i i    -> c, missing x3
  r4 R  1    F F F F                        max   i c c c   lena c c c i
  r5    2    F F F M F                      lena  c c c n c
  r6    2    F F F M F   (chat, not reviewed)
"""

from __future__ import annotations

import datetime as dt

from pipeline.review import accounts
from pipeline.script.result import AlignmentRecord, ChecklistRef, StepResult
from pipeline.storage.store import (
    AlignmentRow,
    Assignment,
    ChecklistVersion,
    OffScriptMoment,
    Recording,
    Review,
    StepMark,
    User,
    UtteranceRow,
    session_scope,
)
from pipeline.vocabulary import StepStatus

V1 = ["greet", "needs", "offer", "close"]
V2 = ["greet", "needs", "offer", "delivery", "close"]
TITLES = {"greet": "Greeting", "needs": "Needs", "offer": "Offer", "delivery": "Delivery", "close": "Close"}
UTC = dt.timezone.utc


def _t(day: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, 10, 0, tzinfo=UTC)


def _alignment(version: ChecklistVersion, steps: list[str], statuses: str) -> dict:
    ref = ChecklistRef(id=version.checklist_id, version=version.version, sha256=version.sha256)
    return AlignmentRecord(checklist=ref, steps=[
        StepResult(id=s, title=TITLES[s], status=StepStatus.FOUND if f == "F" else StepStatus.MISSING, confidence=0.9)
        for s, f in zip(steps, statuses.split())
    ]).to_json()


# The call of tests/test_conversation.py: operator talk 10.0 s, client 9.1 s.
CALL_R1 = [("operator", 1.0, 4.0, "Здравствуйте, магазин Техника"), ("client", 4.5, 8.0, "Добрый день, мне нужен холодильник"),
           ("operator", 7.5, 10.0, "Какой объём вам нужен?"), ("client", 12.0, 15.0, "Литров на триста"),
           ("client", 15.5, 17.0, "и белый"), ("operator", 18.0, 20.0, "Есть модель за тридцать тысяч"),
           ("client", 19.9, 21.0, "угу"), ("operator", 22.5, 25.0, "Оформляем заказ?")]


def seed(url: str) -> dict[str, int]:
    ids: dict[str, int] = {}
    with session_scope(url) as s:
        v1 = ChecklistVersion(checklist_id="sales", version=1, sha256="a" * 64, title="Sales",
                              content={"id": "sales", "title": "Sales", "version": 1,
                                       "steps": [{"id": x, "title": TITLES[x]} for x in V1]})
        v2 = ChecklistVersion(checklist_id="sales", version=2, sha256="b" * 64, title="Sales",
                              content={"id": "sales", "title": "Sales", "version": 2,
                                       "steps": [{"id": x, "title": TITLES[x]} for x in V2]})
        owner = User(name="owner", role="owner", password_hash="x")
        lena = User(name="lena", role="listener", password_hash="x", rate=10.0)
        mx = User(name="max", role="listener", password_hash="x", rate=12.0)
        s.add_all([v1, v2, owner, lena, mx])
        s.flush()
        ids.update(owner=owner.id, lena=lena.id, max=mx.id, v1=v1.id, v2=v2.id)

        calls = {  # name: (operator, kind, duration, day, version, aligner)
            "r1": ("Anna", "audio", 120.0, 2, v1, "F F F F"),
            "r2": ("Anna", "audio", 90.0, 3, v1, "F F F M"),
            "r3": ("Anna", "audio", 45.0, 9, v1, "F M M M"),
            "r4": ("Boris", "audio", 200.0, 4, v1, "F F F F"),
            "r5": ("Boris", "audio", 150.0, 10, v2, "F F F M F"),
            "r6": ("Boris", "chat", 130.0, 11, v2, "F F F M F"),
        }
        aligns = {}
        for i, (name, (op, kind, dur, day, ver, statuses)) in enumerate(calls.items(), start=1):
            rec = Recording(sha256=f"{i:064d}", kind=kind, original_name=f"call_{i:03d}.mp3", source_path=f"/in/call_{i:03d}.mp3",
                            listen_path=f"/audio/call_{i:03d}.opus", duration=dur, operator=op, status="aligned",
                            source_meta={"call_time": _t(day).isoformat()}, created_at=_t(day))
            s.add(rec)
            s.flush()
            ids[name] = rec.id
            steps = V1 if ver is v1 else V2
            row = AlignmentRow(recording_id=rec.id, checklist_version_id=ver.id, result=_alignment(ver, steps, statuses))
            s.add(row)
            s.flush()
            aligns[name] = row
        for idx, (spk, a, b, text) in enumerate(CALL_R1):
            s.add(UtteranceRow(recording_id=ids["r1"], idx=idx, speaker=spk, channel=0 if spk == "operator" else 1,
                               start=a, end=b, text=text))
        for idx, (spk, t) in enumerate([("client", 0.0), ("operator", 40.0), ("client", 100.0), ("operator", 130.0)]):
            s.add(UtteranceRow(recording_id=ids["r6"], idx=idx, speaker=spk, start=t, end=t, text="..."))

        def review(call, user, marks, day, gold=False, comments=None, moments=()):
            a = Assignment(recording_id=ids[call], listener_id=user.id, is_gold=gold, status="submitted",
                           drawn_at_random=call in ("r2", "r3", "r4"))
            s.add(a)
            s.flush()
            r = Review(assignment_id=a.id, alignment_id=aligns[call].id, status="submitted", submitted_at=_t(day))
            s.add(r)
            s.flush()
            steps = V1 if len(marks.split()) == 4 else V2
            code = {"c": "correct", "i": "incorrect", "n": "not_in_script"}
            for step, m in zip(steps, marks.split()):
                s.add(StepMark(review_id=r.id, step_id=step, mark=code[m], comment=(comments or {}).get(step, "")))
            for time, text, desc in moments:
                s.add(OffScriptMoment(review_id=r.id, time=time, text=text, description=desc))
            s.flush()
            return r.id

        ids["rev_owner_r1"] = review("r1", owner, "c c c c", 3)
        ids["rev_lena_r1"] = review("r1", lena, "c c i c", 4, gold=True,
                                    moments=[(60.0, "скидка постоянным покупателям есть?", "скидка для постоянных покупателей")])
        ids["rev_lena_r2"] = review("r2", lena, "c n c c", 5, comments={"needs": "клиент спросил про доставку в Казань"})
        ids["rev_max_r3"] = review("r3", mx, "c i i i", 10)
        ids["rev_max_r4"] = review("r4", mx, "i c c c", 10)
        ids["rev_lena_r4"] = review("r4", lena, "c c c i", 11,
                                    moments=[(80.0, "а скидку постоянному покупателю дадите?", "просит скидку постоянного покупателя")])
        ids["rev_lena_r5"] = review("r5", lena, "c c c n c", 12, comments={"delivery": "спрашивает, можно ли доставить в Казань"})
    return ids


CRM_CSV = """Файл;Менеджер;Дата;Результат;Сумма
call_001.mp3;Anna;02.11.2026 10:05;Заказ;1 500,00
call_002.mp3;Anna;03.11.2026 10:05;Нет заказа;
call_003;Anna;09.11.2026 10:05;нет заказа;
call_004.mp3;Boris;04.11.2026 10:05;заказ;3000
call_005.mp3;Boris;10.11.2026 10:05;Отмена;2000
unknown.mp3;Boris;10.11.2026 11:00;заказ;999
"""


def logged_in(url: str, user_id: int):
    """The user as a page sees them after logging in: bound to a live login session."""
    with session_scope(url) as s:
        user = s.get(User, user_id)
        return accounts.start_session(s, accounts.CurrentUser(user.id, user.name, user.role))[0]
