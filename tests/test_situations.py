"""Grouping not-in-script items into situations, and the "covered in vN" loop."""

import datetime as dt

import pytest
from seed_reports import seed

from pipeline.reports import situations
from pipeline.storage.store import Assignment, OffScriptMoment, Review, StepMark, session_scope

# Four situations, written the way different listeners would describe them.
PARAPHRASES = [
    ("delivery", "клиент спросил про доставку в Казань"),
    ("delivery", "спрашивает, можно ли доставить в Казань"),
    ("delivery", "а доставка в другой город есть?"),
    ("delivery", "доставляете ли вы в регионы"),
    ("discount", "скидка для постоянных покупателей"),
    ("discount", "просит скидку постоянного покупателя"),
    ("discount", "а скидку постоянному покупателю дадите?"),
    ("discount", "есть ли скидки для тех кто уже покупал"),
    ("return", "хочет вернуть товар, который не подошёл"),
    ("return", "как оформить возврат, если не подойдёт"),
    ("credit", "можно ли оплатить в рассрочку"),
    ("credit", "спрашивает про рассрочку без переплаты"),
]


def partition(labels, names):
    groups = {}
    for lab, name in zip(labels, names):
        groups.setdefault(lab, set()).add(name)
    return groups


def test_paraphrases_group_together_and_situations_stay_apart():
    names = [f"{s}{i}" for i, (s, _) in enumerate(PARAPHRASES)]
    labels = situations.group_texts([t for _, t in PARAPHRASES])  # the alignment's models + TF-IDF
    found = sorted(sorted(g) for g in partition(labels, [s for s, _ in PARAPHRASES]).values())
    assert found == [["credit"], ["delivery"], ["discount"], ["return"]]
    assert len(set(labels)) == 4, list(zip(names, labels))
    assert labels[0] == 0 and labels[4] == 1  # biggest group first; ties in order of first item


def test_tfidf_fallback_groups_close_wording():
    texts = ["скидка для постоянных покупателей", "скидку постоянным покупателям дадите?",
             "можно ли оплатить в рассрочку", "про рассрочку без переплаты"]
    labels = situations.group_texts(texts, encoders={})
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]


def _add_review(url, recording_id, listener_id, alignment_id, moment):
    with session_scope(url) as s:
        a = Assignment(recording_id=recording_id, listener_id=listener_id, status="submitted")
        s.add(a)
        s.flush()
        r = Review(assignment_id=a.id, alignment_id=alignment_id, status="submitted",
                   submitted_at=dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc))
        s.add(r)
        s.flush()
        for step in ["greet", "needs", "offer", "delivery", "close"]:
            s.add(StepMark(review_id=r.id, step_id=step, mark="correct"))
        s.add(OffScriptMoment(review_id=r.id, time=30.0, text="скидка постоянным покупателям бывает?", description=moment))


def test_situations_report_and_covered_loop(db_url):
    url = db_url
    ids = seed(url)
    with session_scope(url) as s:
        sits = situations.situations(s)
    assert len(sits) == 2
    delivery = next(x for x in sits if any(k.startswith("mark:") for k in x.keys))
    discount = next(x for x in sits if x is not delivery)
    assert all(k.startswith("mark:") for k in delivery.keys) and all(k.startswith("moment:") for k in discount.keys)
    assert (delivery.count, delivery.calls, delivery.step_id) == (2, 2, "needs")  # needs (r2) and delivery (r5) tie
    assert delivery.first_seen.day == 3 and delivery.last_seen.day == 10  # r2 and r5
    assert "а скидку постоянному покупателю дадите?" in discount.examples
    assert delivery.status == discount.status == "open"

    with session_scope(url) as s:
        situations.mark_covered(s, delivery.keys, "sales", 2, "delivery to other cities", "owner")
        situations.mark_covered(s, discount.keys, "sales", 2, "loyalty discount", "owner")
        with pytest.raises(situations.SituationError, match="no version 7"):
            situations.mark_covered(s, discount.keys, "sales", 7)
    with session_scope(url) as s:
        df = situations.situations_report(s)
    rows = {r.label: r for r in df.itertuples()}
    assert len(rows) == 2
    # delivery: r5 is aligned with v2 and still shows it; the discount items are all on v1 calls
    d = next(r for r in rows.values() if "Казань" in r.label)
    k = next(r for r in rows.values() if "скидк" in r.label)
    assert (d.covered_in, d.since_covered, d.status) == ("sales v2", 1, "still occurs after v2")
    assert (k.since_covered, k.status) == (0, "not seen since v2")

    # The discount situation comes back in a call aligned with v2: the report says so.
    with session_scope(url) as s:
        from sqlalchemy import select

        from pipeline.storage.store import AlignmentRow

        align_r6 = s.scalar(select(AlignmentRow.id).where(AlignmentRow.recording_id == ids["r6"]))
    _add_review(url, ids["r6"], ids["max"], align_r6, "клиент хочет скидку как постоянный покупатель")
    with session_scope(url) as s:
        sits = situations.situations(s)
    k = next(x for x in sits if x.coverage and x.coverage.label == "loyalty discount")
    assert k.count == 3 and (k.since_covered, k.calls_since_covered) == (1, 1)
    assert k.status == "still occurs after v2"


def test_machine_off_script_sentences_are_grouped_too_and_wait_for_a_listener(db_url):
    from sqlalchemy import select

    from pipeline.storage.store import AlignmentRow

    ids = seed(db_url)
    with session_scope(db_url) as s:
        for call, texts in (("r6", ["а скидку постоянным покупателям даёте?", "курьер привезёт заказ завтра до обеда"]),
                            ("r2", ["есть ли скидка для постоянных покупателей"])):
            row = s.scalar(select(AlignmentRow).where(AlignmentRow.recording_id == ids[call]))
            row.result = {**row.result, "off_script": [
                {"utterance": i, "start": 10.0 * i, "end": 10.0 * i + 3, "text": t, "confidence": 0.7} for i, t in enumerate(texts)]}
    with session_scope(db_url) as s:
        sits = situations.situations(s)
    # r2 was reviewed and its listener did not confirm the suggestion: only unreviewed r6 adds leads.
    machine = [i for sit in sits for i in sit.items if i.by_machine]
    assert sorted(i.text for i in machine) == ["а скидку постоянным покупателям даёте?", "курьер привезёт заказ завтра до обеда"]
    assert {i.recording_id for i in machine} == {ids["r6"]}
    assert sorted(i.start for i in machine) == [0.0, 10.0 - situations.CLIP_PAD_S]  # clips around the sentence
    discount = next(sit for sit in sits if any("скидку постоянного" in i.text for i in sit.items))
    assert (discount.count, discount.confirmed, discount.calls, discount.status) == (3, 2, 3, "open")
    courier = next(sit for sit in sits if any("курьер" in i.text for i in sit.items))
    assert (courier.count, courier.confirmed, courier.status) == (1, 0, "not yet confirmed")
    with session_scope(db_url) as s:
        df = situations.situations_report(s)
    assert sorted(df["confirmed"]) == [0, 2, 2]
