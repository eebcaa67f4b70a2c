"""Alignment: the labelled dialogues reach the targets, skipped and out-of-order
steps are reported right, output has the documented shape, and listener-confirmed
examples from a real review database change what the aligner does."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.script.align import align, align_many, alignment_record, split_at_pauses, split_sentences
from pipeline.script.checklist import OFF_SCRIPT, load_checklist
from pipeline.script.result import AlignmentRecord
from pipeline.speech.transcript import CLIENT, OPERATOR, UNKNOWN, Transcript, Utterance, Word
from pipeline.storage.checklists import reviewed_examples
from pipeline.vocabulary import StepStatus

ROOT = Path(__file__).resolve().parent.parent
APPLIANCES = ROOT / "checklists" / "appliances-inbound.yaml"


def _load_eval():
    spec = importlib.util.spec_from_file_location("align_eval", ROOT / "benchmarks" / "align_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["align_eval"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ev = _load_eval()


@pytest.fixture(scope="module")
def checklist():
    return load_checklist(APPLIANCES)


def call(*turns: tuple[str, str]) -> Transcript:
    """A transcript from (speaker, text) turns, 3 s each."""
    utts = [Utterance(speaker=s, start=i * 3.0, end=i * 3.0 + 2.5, text=t) for i, (s, t) in enumerate(turns)]
    return Transcript(utterances=utts, duration=len(turns) * 3.0, language="ru", model="test")


FULL_CALL = [
    (OPERATOR, "Здравствуйте, магазин Электрон, меня зовут Лена."),
    (CLIENT, "Добрый день, ищу стиральную машину."),
    (OPERATOR, "Какая загрузка вам нужна и сколько человек в семье?"),
    (CLIENT, "Нас трое."),
    (OPERATOR, "На какую сумму рассчитываете?"),
    (CLIENT, "Тысяч тридцать."),
    (OPERATOR, "Предлагаю модель Бош на восемь килограммов, она тихая и экономит воду, как раз в ваш бюджет."),
    (CLIENT, "Дорого как-то."),
    (OPERATOR, "Понимаю, но можно оформить рассрочку без переплаты, платёж будет небольшой."),
    (OPERATOR, "Ещё могу добавить подключение мастером и шланг подлиннее."),
    (OPERATOR, "У вас есть наша бонусная карта?"),
    (OPERATOR, "Оформляю заказ, доставка в субботу, оплата при получении."),
    (OPERATOR, "Спасибо за звонок, до свидания!"),
]


def test_full_call_finds_every_step(checklist):
    result = align(call(*FULL_CALL), checklist)
    assert result.missing == []
    assert result.step("greeting").utterances == [0]
    assert result.step("budget").utterances == [4]
    assert result.step("objection").utterances == [8]
    assert result.step("farewell").utterances == [12]
    assert result.off_script == []
    assert result.checklist == {"id": "appliances-inbound", "version": checklist.version, "sha256": checklist.sha256}


def test_skipped_budget_is_missing(checklist):
    turns = [t for t in FULL_CALL if "сумму" not in t[1] and "тридцать" not in t[1]]
    result = align(call(*turns), checklist)
    assert result.missing == ["budget"]
    budget = result.step("budget")
    assert budget.status == "missing" and budget.utterances == [] and budget.start is None
    assert 0.0 <= budget.confidence <= 1.0


def test_step_out_of_order_is_still_found(checklist):
    # the loyalty card asked right after the greeting, long before checkout
    turns = list(FULL_CALL)
    card = turns.pop(10)
    turns.insert(1, card)
    result = align(call(*turns), checklist)
    assert result.step("loyalty_card").status == "found"
    assert result.step("loyalty_card").utterances == [1]
    assert result.missing == []


def test_off_script_operator_talk_is_listed(checklist):
    turns = list(FULL_CALL)
    turns.insert(7, (OPERATOR, "Честно говоря, у нас сегодня начальник злой, поэтому я тороплюсь."))
    result = align(call(*turns), checklist)
    assert [o.utterance for o in result.off_script] == [7]
    assert "начальник" in result.off_script[0].text
    assert result.missing == []


def test_client_turns_are_never_aligned(checklist):
    result = align(call((CLIENT, "Добрый день, магазин Электрон?"), (CLIENT, "Спасибо, до свидания!")), checklist)
    assert all(s.status == "missing" for s in result.steps)
    assert result.off_script == []


def test_unknown_speakers_are_aligned_when_no_operator_is_known(checklist):
    result = align(call((UNKNOWN, "Добрый день, магазин Электрон, меня зовут Лена."), (UNKNOWN, "Всего доброго, до свидания!")), checklist)
    assert result.step("greeting").status == "found" and result.step("farewell").status == "found"


def test_the_voice_that_performs_the_script_is_the_operator(checklist):
    """A mono call split by voice names the first voice operator; when the
    client spoke first (an outbound call), the script puts the names right."""
    swap = {OPERATOR: CLIENT, CLIENT: OPERATOR}
    named_wrong = call((CLIENT, "Алло?"), *((swap[s], t) for s, t in FULL_CALL))
    named_wrong.speakers = {"method": "voice", "operator_by": "first to speak", "separation": 0.4}
    right = align(call(*FULL_CALL), checklist)
    result = align(named_wrong, checklist)
    assert [u.speaker for u in named_wrong.utterances[1:]] == [s for s, _ in FULL_CALL]
    assert result.missing == [] and result.step("greeting").utterances == [1]
    assert named_wrong.speakers["operator_by"] == "script"
    assert named_wrong.speakers["operator_steps"] == len(right.steps) > named_wrong.speakers["client_steps"]
    assert alignment_record("call.wav", named_wrong, checklist, result).speakers == named_wrong.speakers  # in the stored JSON
    named_right = call(*FULL_CALL)  # already right: left as it is
    named_right.speakers = {"method": "voice", "operator_by": "first to speak", "separation": 0.4}
    align(named_right, checklist)
    assert [u.speaker for u in named_right.utterances] == [s for s, _ in FULL_CALL]


def test_asr_like_errors_are_tolerated(checklist):
    # lower case, no punctuation, split and mangled words
    noisy = call(
        (OPERATOR, "добрый день магазин электро н меня зовут лена"),
        (OPERATOR, "на какую суму расчитываете"),
        (OPERATOR, "предлагаю вам модель бош она тихая и эконом ит воду как раз в ваш бюджет"),
        (OPERATOR, "спасибо за звонок до свидани я"),
    )
    result = align(noisy, checklist)
    found = {s.id for s in result.steps if s.status == "found"}
    assert {"greeting", "budget", "offer", "farewell"} <= found


def test_long_utterance_is_split_into_sentences(checklist):
    result = align(call((OPERATOR, "Добрый день, Электрон, Лена. Какую технику вы ищете? Какой у вас бюджет?")), checklist)
    for step in ("greeting", "need", "budget"):
        assert result.step(step).utterances == [0]
    assert split_sentences("Да. Хорошо!  Что ещё?\nИ всё") == ["Да.", "Хорошо!", "Что ещё?", "И всё"]


def test_sentence_times_come_from_word_timestamps(checklist):
    words = [Word(0.0, 0.4, "Добрый"), Word(0.4, 0.8, "день."), Word(5.0, 5.5, "Кстати,"), Word(5.5, 6.0, "мой"),
             Word(6.0, 6.5, "кот"), Word(6.5, 7.0, "вчера"), Word(7.0, 7.5, "заболел.")]
    utt = Utterance(OPERATOR, 0.0, 7.5, "Добрый день. Кстати, мой кот вчера заболел.", words=words)
    result = align(Transcript([utt], 8.0, "ru", "test"), checklist)
    assert len(result.off_script) == 1
    assert result.off_script[0].start == 5.0 and result.off_script[0].end == 7.5


def test_unpunctuated_text_is_cut_into_sentences_at_pauses(checklist):
    """ASR without punctuation: the pause after the loyalty question ends a
    sentence, so the remark after it is judged on its own; a hesitation
    shorter than the pause rule keeps a sentence whole."""
    card, parking = "у вас есть наша бонусная карта".split(), "кстати у нас на парковке ремонт заезжайте со двора".split()
    gaps = [0.05] * (len(card) - 1) + [1.25] + [0.05, 0.05, 0.05, 0.3] + [0.05] * (len(parking) - 5)
    words, t = [], 3.0
    for w, gap in zip(card + parking, gaps + [0.0]):
        words.append(Word(t, t + 0.25, w))
        t += 0.25 + gap
    utt = Utterance(OPERATOR, 3.0, t, " ".join(card + parking), words=words)
    assert split_at_pauses(utt.text, words) == [" ".join(card), " ".join(parking)]
    assert split_at_pauses(utt.text, words[:-1]) == [utt.text]  # timestamps that do not line up: left whole
    greeting = Utterance(OPERATOR, 0.0, 2.5, FULL_CALL[0][1])
    result = align(Transcript([greeting, utt], t, "ru", "test"), checklist)
    loyalty = result.step("loyalty_card")
    assert loyalty.utterances == [1] and (loyalty.quote, loyalty.quote_start) == (" ".join(card), 3.0)
    assert [(o.text, o.start) for o in result.off_script] == [(" ".join(parking), words[len(card)].start)]


def test_alignment_record_json_shape(checklist):
    transcript = call(*FULL_CALL)
    record = alignment_record("call.wav", transcript, checklist, align(transcript, checklist))
    result = json.loads(json.dumps(record.to_json()))  # serialisable
    assert AlignmentRecord.model_validate(result) == AlignmentRecord.model_validate(record.to_json())
    assert result["file"] == "call.wav"
    assert result["checklist"] == {"id": checklist.id, "version": checklist.version, "sha256": checklist.sha256}
    assert result["duration"] == transcript.duration
    assert result["utterances"][0] == {"i": 0, "speaker": "operator", "start": 0.0, "end": 2.5, "text": FULL_CALL[0][1]}
    step = result["steps"][0]
    assert set(step) >= {"id", "status", "utterances", "start", "end", "confidence"}
    assert [s["id"] for s in result["steps"]] == checklist.step_ids
    assert all(0.0 <= s["confidence"] <= 1.0 for s in result["steps"])
    assert result["off_script"] == []


def test_empty_transcript(checklist):
    result = align(Transcript([], 0.0, "ru", "test"), checklist)
    assert [s.status for s in result.steps] == ["missing"] * len(checklist.steps)


def test_align_many_equals_align(checklist):
    calls = [call(*FULL_CALL), call(*FULL_CALL[:5])]
    batch = align_many(calls, checklist)
    for transcript, together in zip(calls, batch):
        alone = align(transcript, checklist)
        as_stored = [alignment_record("c.wav", transcript, checklist, a).to_json() for a in (alone, together)]
        assert as_stored[0] == as_stored[1]


# --- the labelled set ---------------------------------------------------------


@pytest.fixture(scope="module")
def reference_metrics():
    dialogues = ev.load_dialogues("all")
    return ev.evaluate(dialogues, ev.run(dialogues))


def test_labelled_set_reaches_targets_on_reference_text(reference_metrics):
    m = reference_metrics
    assert m["utterances"] >= 150
    assert m["step_micro"][2] >= 0.92, ev.report("reference", m)
    assert m["off_script"][1] >= 0.80, ev.report("reference", m)
    assert m["presence"][2] >= 0.95


def test_reliability_table_and_calibration_error():
    """A suggestion stated at 0.95 and right 9 times in 10 is off by 0.05; two
    at 0.55 that are both wrong, by 0.55; the error weighs each bin by its share."""
    items = [(0.95, True)] * 9 + [(0.95, False), (0.55, False), (0.55, False)]
    rows, ece = ev.reliability(items)
    assert [(name, n) for name, n, _, _ in rows] == [("0.5-0.6", 2), ("0.9-1.0", 10)]
    assert rows[1][2:] == pytest.approx((0.95, 0.9))
    assert ece == pytest.approx(10 / 12 * 0.05 + 2 / 12 * 0.55)
    assert ev.reliability([(1.0, True)])[1] == pytest.approx(0.0)  # 1.0 falls in the top bin


def test_held_out_split_reaches_the_reference_target():
    dialogues = ev.load_dialogues("test")
    m = ev.evaluate(dialogues, ev.run(dialogues))
    assert m["step_micro"][2] >= 0.90, ev.report("reference, test split", m)


def test_labelled_set_reaches_targets_on_cached_asr_text():
    dialogues = [a for a in (ev.asr_dialogue(d) for d in ev.load_dialogues("all")) if a is not None]
    if not dialogues:
        pytest.fail("the committed ASR transcripts are missing: rebuild them with benchmarks/align_eval.py --make-asr")
    m = ev.evaluate(dialogues, ev.run(dialogues))
    assert m["step_micro"][2] >= 0.84, ev.report("ASR", m)
    assert m["off_script"][0] >= 0.50, ev.report("ASR", m)  # was 0.38 before unclear fragments stopped counting


def test_unclear_asr_fragment_is_not_off_script(checklist):
    # the same remark heard clearly is off-script; heard at low word probability it is
    # more likely a scripted sentence the recogniser mangled, so it is not reported
    text = "Кстати, мой кот вчера заболел."
    def remark(prob: float) -> Transcript:
        words = [Word(i * 0.5, i * 0.5 + 0.4, w, probability=prob) for i, w in enumerate(text.split())]
        return Transcript([Utterance(OPERATOR, 0.0, 2.5, text, words=words)], 3.0, "ru", "test")
    assert len(align(remark(0.95), checklist).off_script) == 1
    assert align(remark(0.4), checklist).off_script == []


# --- learning from reviews -------------------------------------------------------


def stored(settings, name: str, transcript: Transcript) -> int:
    """A recording whose transcript is stored, as after ``ingest``."""
    from pipeline.storage import store
    from pipeline.storage.store import Recording, session_scope

    with session_scope(settings.db_url) as session:
        rec = Recording(sha256=name * 64, original_name=f"{name}.wav", source_path=f"/x/{name}.wav")
        session.add(rec)
        session.flush()
        store.save_transcript(session, rec, transcript)
        return rec.id


def aligned_stored(settings, rid: int, checklist) -> AlignmentRecord:
    """Align a stored recording the way ``process`` does, and read back what was stored."""
    from pipeline.storage.ingest import process_many
    from pipeline.storage.store import AlignmentRow, session_scope

    process_many(settings, [rid], checklist)  # the transcript is stored: this only aligns
    with session_scope(settings.db_url) as session:
        return session.scalar(select(AlignmentRow).where(AlignmentRow.recording_id == rid)).record


def test_the_listener_sees_each_judged_sentence_once(settings, checklist):
    """An utterance that strays, does a step, and strays again: the step quotes
    its sentence, each stray is a moment of its own with its own time (never
    the step sentence), and confirming one stores just its sentence."""
    from pipeline.review import review
    from pipeline.storage.store import Assignment, OffScriptMoment, User, session_scope

    parking = "Кстати, у нас на парковке сейчас ремонт, заезжайте со двора, там шлагбаум."
    card = "У вас есть наша бонусная карта?"
    cat = "А у меня кот вчера заболел, представляете, всю ночь не спали."
    rid = stored(settings, "c", call(*FULL_CALL[:10], (OPERATOR, f"{parking} {card} {cat}"), *FULL_CALL[11:]))
    record = aligned_stored(settings, rid, checklist)
    with session_scope(settings.db_url) as session:
        lena = User(name="lena", role="listener", password_hash="x")
        session.add(lena)
        session.flush()
        job = Assignment(recording_id=rid, listener_id=lena.id)
        session.add(job)
        session.flush()
        ids = (lena.id, job.id)

    def view():
        with review.write_session(settings.db_url) as session:
            return review.open_call(session, *ids)

    step = next(s for s in view().steps if s.id == "loyalty_card").suggestion
    off = [o for o in view().off_script if o.utterance_idx == 10]
    assert step.quote == card and record.step("loyalty_card").utterances == [10]
    assert [o.text for o in off] == [parking, cat] and off[0].start < step.start < off[1].start
    assert all(0.0 < o.confidence < 1.0 for o in off)
    with review.write_session(settings.db_url) as session:
        review.confirm_off_script(session, *ids, 10, True, "болезнь кота", off[1].start)
    with session_scope(settings.db_url) as session:
        moment = session.scalar(select(OffScriptMoment))
        assert (moment.text, moment.time) == (cat, off[1].start)
    shown = view()
    assert [o.confirmed_id is not None for o in shown.off_script if o.utterance_idx == 10] == [False, True]
    assert shown.moments == []  # the confirmed suggestion is not listed again as a moment of its own
    with review.write_session(settings.db_url) as session:
        review.confirm_off_script(session, *ids, 10, False, "", off[1].start)
    assert all(o.confirmed_id is None for o in view().off_script)


def test_listener_confirmed_examples_teach_the_next_alignment(settings, checklist, monkeypatch):
    """The learning path end to end, on SQLite and PostgreSQL: a submitted
    review's confirmed step and "not in script" moment teach the next
    ``process`` of another call, and the owner can strike an example out."""
    from typer.testing import CliRunner

    from pipeline import cli
    from pipeline.config import get_settings
    from pipeline.storage.store import AlignmentRow, Assignment, OffScriptMoment, Review, StepMark, User, session_scope

    # A phrase this shop uses for the loyalty step that the script's examples do not cover,
    # and a recurring remark listeners filed as not in the script.
    odd_card = "Вы уже участник нашего клуба Электрон Плюс?"
    remark = "Запишите мой личный номер, буду звонить вам про акции."
    new_call = call(*FULL_CALL[:10], (OPERATOR, "Скажите, вы участник клуба Электрон Плюс?"), *FULL_CALL[11:])

    def aligned(rid: int):
        return aligned_stored(settings, rid, checklist)

    first = stored(settings, "a", call(*FULL_CALL[:10], (OPERATOR, odd_card), (OPERATOR, remark), *FULL_CALL[11:]))
    second = stored(settings, "b", new_call)
    before = aligned(second).step("loyalty_card")
    aligned(first)
    with session_scope(settings.db_url) as session:
        row = session.scalar(select(AlignmentRow).where(AlignmentRow.recording_id == first))
        record = row.record  # what the aligner would have said had it been right: the listener confirms it
        record.step("loyalty_card").status = StepStatus.FOUND
        record.step("loyalty_card").utterances, record.step("loyalty_card").quote = [10], odd_card
        row.result = record.to_json()
        lena, ivan = User(name="lena", role="listener", password_hash="x"), User(name="ivan", role="listener", password_hash="x")
        session.add_all([lena, ivan])
        session.flush()
        done, draft = Assignment(recording_id=first, listener_id=lena.id), Assignment(recording_id=first, listener_id=ivan.id)
        session.add_all([done, draft])
        session.flush()
        review = Review(assignment_id=done.id, alignment_id=row.id, status="submitted")
        review.marks = [StepMark(step_id="loyalty_card", mark="correct"), StepMark(step_id="budget", mark="incorrect")]
        review.moments = [OffScriptMoment(utterance_idx=11, time=33.0, text=remark)]
        unsent = Review(assignment_id=draft.id, alignment_id=row.id, status="draft")  # not a confirmation yet
        unsent.marks = [StepMark(step_id="greeting", mark="correct")]
        session.add_all([review, unsent])
        session.flush()
        assert reviewed_examples(session, row.checklist_version_id) == {"loyalty_card": [odd_card], OFF_SCRIPT: [remark]}

    after = aligned(second).step("loyalty_card")
    assert after.utterances == [10]
    assert before.status == "missing" or before.confidence < after.confidence

    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    get_settings.cache_clear()  # aligning read the settings already
    runner = CliRunner()
    res = runner.invoke(cli.app, ["checklists", "examples", checklist.id])
    assert res.exit_code == 0, res.output
    listed = [line.split() for line in res.output.splitlines()[1:]]
    assert [row[:2] for row in listed] == [["1", "loyalty_card"], ["2", "not"]] and odd_card in res.output
    res = runner.invoke(cli.app, ["checklists", "examples", str(APPLIANCES), "--drop", "1"])
    assert res.exit_code == 0 and "[dropped]" in res.output.splitlines()[1], res.output
    dropped = aligned(second).step("loyalty_card")
    assert (dropped.status, dropped.utterances, dropped.confidence) == (before.status, before.utterances, before.confidence)
    res = runner.invoke(cli.app, ["checklists", "examples", checklist.id, "--restore", "1", "--drop", "7"])
    assert res.exit_code == 2 and "no example 7" in res.output
    assert runner.invoke(cli.app, ["checklists", "examples", checklist.id, "--restore", "1"]).exit_code == 0
    assert aligned(second).step("loyalty_card").utterances == [10]
    res = runner.invoke(cli.app, ["checklists", "list"])
    assert res.exit_code == 0, res.output
    [line] = [line.split() for line in res.output.splitlines() if line.startswith(checklist.id)]
    assert line[:8] == [checklist.id, f"v{checklist.version}", checklist.sha256[:8], "2", "calls", "1", "reviews", "2"]
    res = runner.invoke(cli.app, ["checklists", "examples", "no-such-script"])
    assert res.exit_code == 2 and "no calls were aligned" in res.output
