"""Reports on the seeded database of tests/seed_reports.py; every expected
number is worked out by hand from the table in that file's docstring."""

import io
import json
import re

import openpyxl
import pandas as pd
import pytest
from seed_reports import CRM_CSV, logged_in, seed

from pipeline.reports import export, reports, stats
from pipeline.reports.data import ReportError, categorize, load
from pipeline.storage.store import session_scope


@pytest.fixture(scope="module")
def db(module_db_url):
    url = module_db_url
    ids = seed(url)
    from pipeline.reports import outcomes

    mapping = outcomes.ColumnMapping(call="Файл", outcome="Результат", operator="Менеджер", time="Дата", amount="Сумма")
    with session_scope(url) as s:
        outcomes.import_outcomes(s, outcomes.read_crm_csv(CRM_CSV, mapping))
    return url, ids


@pytest.fixture(scope="module")
def data(db):
    with session_scope(db[0]) as s:
        return load(s)


def row(df, **where):
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_categorize():
    assert categorize("incorrect", "missing") == "missing"
    assert categorize("incorrect", "found") == "incorrect"
    assert categorize("correct", "missing") == "correct"
    assert categorize("not_in_script", "found") == "not_in_script"
    assert categorize(None, "missing") == "missing"
    assert categorize(None, "found") is None


def test_steps_rates_with_wilson(data):
    df = reports.steps_report(data)
    assert list(df["step_id"]) == ["greet", "needs", "offer", "delivery", "close"]
    # greet: r1 owner c, r2 c, r3 c, r4 max i (max submitted first), r5 c -> 4 correct, 1 incorrect of 5
    greet = row(df, step_id="greet")
    assert (greet.reviewed_calls, greet.correct_n, greet.incorrect_n) == (5, 4, 1)
    assert greet.correct == pytest.approx(0.8)
    # Wilson 4/5: centre (0.8 + 0.384146) / 1.768292 = 0.669655,
    # half 1.959964 * sqrt(0.032 + 0.038415) / 1.768292 = 0.294121 -> 0.375535 .. 0.963776
    assert greet.correct_low == pytest.approx(0.375535, abs=1e-5)
    assert greet.correct_high == pytest.approx(0.963776, abs=1e-5)
    needs = row(df, step_id="needs")
    assert (needs.correct_n, needs.not_in_script_n, needs.missing_n) == (3, 1, 1)
    assert needs.missing == pytest.approx(0.2)
    close = row(df, step_id="close")
    assert (close.correct_n, close.missing_n) == (4, 1)
    assert row(df, step_id="delivery").not_in_script == 1.0


def test_machine_figures_on_every_call_corrected_by_the_random_reviews(data):
    df = reports.machine_steps_report(data)
    assert list(df["step_id"]) == ["greet", "needs", "offer", "delivery", "close"]
    needs = row(df, step_id="needs")
    # The aligner found "needs" in r1 r2 r4 r5 r6, not r3: 5 of 6 calls.
    assert (needs.calls, needs.machine_found) == (6, pytest.approx(5 / 6))
    # Verdicts: r1 owner c (1), r5 lena c (1): chosen on purpose, they count as themselves.
    # Random: r2 n (y 0, f 1), r3 i on a missing step (y 0, f 0), r4 max c (y 1, f 1); r6 unreviewed (f 1).
    # Listeners alone: 3 of 5 done.
    assert (needs.reviewed_calls, needs.random_reviews, needs.listeners_done) == (5, 3, pytest.approx(0.6))
    # Three random reviews are too few for an interval: the plain estimate over r2 r3 r4 r6,
    # mean(f) 0.75 + mean(y - f) -1/3 = 0.416667; with r1 and r5 (both done), w = 4/6:
    # 2/3 * 0.416667 + 1/3 = 0.611111.
    assert needs.estimate == pytest.approx(0.611111, abs=1e-5)
    assert pd.isna(needs.estimate_low) and pd.isna(needs.interval_vs_listeners)
    # "delivery" exists only in v2 (r5 reviewed on purpose, r6 not): no random review, no interval.
    delivery = row(df, step_id="delivery")
    assert (delivery.calls, delivery.random_reviews) == (2, 0)
    assert pd.isna(delivery.estimate_low) and pd.isna(delivery.interval_vs_listeners)


def test_machine_figures_with_enough_random_reviews_carry_the_corrected_interval():
    from pipeline.reports.data import CallInfo, Judgement, ReportData

    # 40 calls; the aligner found "greet" in the first 30. Calls 0-11 and 30 were drawn at random and
    # reviewed: done on 0-9 and 30 (correct), not on 10, 11 ("not in script"): the aligner was wrong on 10, 11, 30.
    calls = {i: CallInfo(i, f"c{i}", "Anna", "audio", 60.0, None, None, "sales", 1, [("greet", "Greeting")],
                         {"greet": "found" if i < 30 else "missing"}, drawn_at_random=i < 12 or i == 30) for i in range(40)}
    done = {i: i < 10 or i == 30 for i in list(range(12)) + [30]}
    judgements = [Judgement(i, i, "lena", "listener", False, "greet", "correct" if d else "not_in_script",
                            calls[i].pipeline["greet"], "correct" if d else "not_in_script", "", None) for i, d in done.items()]
    df = reports.machine_steps_report(ReportData(calls, [], judgements))
    greet = row(df, step_id="greet")
    assert (greet.calls, greet.machine_found, greet.reviewed_calls, greet.random_reviews) == (40, 0.75, 13, 13)
    est = stats.corrected_rate([1.0] * 30 + [0.0] * 10,
                               [(1.0, 1.0)] * 10 + [(0.0, 1.0)] * 2 + [(1.0, 0.0)])
    assert (greet.estimate, greet.estimate_low, greet.estimate_high) == pytest.approx((est.p, est.low, est.high))
    wilson = stats.wilson(11, 13)
    assert greet.listeners_done == pytest.approx(11 / 13)
    assert greet.interval_vs_listeners == pytest.approx((est.high - est.low) / (wilson.high - wilson.low))
    assert greet.interval_vs_listeners < 1  # the machine, right on 10 of 13, narrows it


def test_versions_side_by_side(data):
    df = reports.versions_report(data)
    greet = row(df, step_id="greet")
    assert (greet.v1_calls, greet.v2_calls) == (4, 1)
    assert greet.v1_correct == pytest.approx(0.75)  # r1 c, r2 c, r3 c, r4 i
    assert greet.v2_correct == 1.0
    assert row(df, step_id="close").v1_missing == pytest.approx(0.25)  # r3


def test_funnel(data):
    df = reports.funnel_report(data)
    # Calls without an order: r2 (no order), r3 (no order) on v1; r5 (cancelled) on v2.
    v1 = df[df.version == 1].set_index("step_id")
    # r2: greet c, needs n, offer c, close c -> last reached close; r3: greet only
    assert v1.loc["greet", "stopped_here"] == 1 and v1.loc["close", "stopped_here"] == 1
    assert list(v1["reached"]) == [2, 2, 1, 1, 1]  # (none), greet, needs, offer, close
    assert v1.loc["needs", "reached_share"] == 0.5
    v2 = df[df.version == 2].set_index("step_id")
    assert v2.loc["close", "stopped_here"] == 1 and v2["calls"].iloc[0] == 1
    assert set(df["scope"]) == {"calls without an order"}


def test_operator_scorecard(data):
    df = reports.operators_report(data)
    anna, boris = row(df, operator="Anna"), row(df, operator="Boris")
    assert anna.auto_off_script == 0  # the seeded alignments flag no off-script sentence
    # Anna: r1 4/4 (owner), r2 3/4, r3 1/4 -> mean 2/3; all 3 calls reviewed -> margin 0
    assert (anna.calls, anna.reviewed_calls) == (3, 3)
    assert anna.adherence == pytest.approx(2 / 3)
    assert anna.margin_of_error == 0.0
    assert anna.auto_adherence == pytest.approx((1 + 0.75 + 0.25) / 3)
    # Boris: r4 3/4 (max), r5 4/5 -> 0.775; 2 of 3 calls: 1.959964 * 0.5 / sqrt(2) * sqrt(1/2) = 0.489991
    assert boris.adherence == pytest.approx(0.775)
    assert boris.margin_of_error == pytest.approx(0.489991, abs=1e-6)
    # outcomes: Anna r1 order 1500, r2 r3 no order; Boris r4 order 3000, r5 cancelled
    assert anna.conversion == pytest.approx(1 / 3) and anna.avg_order_value == 1500
    assert boris.conversion == pytest.approx(0.5) and boris.avg_order_value == 3000


def test_operator_steps_and_trend(data):
    steps = reports.operator_steps_report(data)
    g = row(steps, operator="Boris", step_id="greet")
    assert (g.reviewed_calls, g.correct_n) == (2, 1)
    # The aligner's share covers every call, reviewed or not: Anna's "needs" was found in r1, r2, not r3;
    # Boris's "delivery" (v2: r5 reviewed, r6 not) was found in neither.
    needs = row(steps, operator="Anna", step_id="needs")
    assert (needs.calls, needs.machine_found) == (3, pytest.approx(2 / 3))
    delivery = row(steps, operator="Boris", step_id="delivery")
    assert (delivery.calls, delivery.machine_found, delivery.reviewed_calls) == (2, 0.0, 1)
    trend = reports.operator_trend_report(data)
    anna = trend[trend.operator == "Anna"].set_index("period")
    # r1 (Mon 2 Nov) and r2 (3 Nov) in the week of 2026-11-02, r3 (9 Nov) in the next
    assert anna.loc["2026-11-02", "adherence"] == pytest.approx(0.875)
    assert anna.loc["2026-11-09", "adherence"] == pytest.approx(0.25)


def test_one_calls_review_as_the_reports_count_it(data, db):
    ids = db[1]
    r4 = reports.call_review(data, ids["r4"])
    # r4: max submitted first (i c c c), so his verdicts stand; "incorrect" on a found step stays incorrect.
    assert list(r4["step"]) == ["Greeting", "Needs", "Offer", "Close"]
    assert list(r4["category"]) == ["incorrect", "correct", "correct", "correct"] and set(r4["reviewer"]) == {"max"}
    assert reports.call_review(data, ids["r6"]).empty  # the chat nobody reviewed


def test_conversation_per_operator(data):
    df = reports.conversation_report(data)
    anna, boris = row(df, operator="Anna"), row(df, operator="Boris")
    assert anna.audio_calls == 1
    assert anna.talk_listen_ratio == pytest.approx(10 / 9.1)
    assert anna.interruptions_by_operator == 1
    assert anna.response_latency_mean == pytest.approx(1.25)
    # r6 chat: client 0 -> operator 40, client 100 -> operator 130
    assert boris.chats == 1
    assert boris.chat_first_response_time == 40 and boris.chat_avg_response_time == 35


def test_listener_quality(data):
    df = reports.listeners_report(data)
    lena, mx = row(df, listener="lena"), row(df, listener="max")
    # gold r1: lena c c i c vs owner c c c c: po 3/4, pe = (3*4)/16 = 0.75 -> kappa 0
    assert (lena.gold_steps, lena.gold_agreement, lena.gold_kappa) == (4, 0.75, 0.0)
    assert lena.gold_reviews == 1
    # peers on r4: lena c c c i, max i c c c: po 1/2, pe = (3*3 + 1*1)/16 = 0.625 -> kappa -1/3
    assert lena.peer_steps == 4 and lena.peer_agreement == 0.5
    assert lena.peer_kappa == pytest.approx(-1 / 3)
    assert mx.peer_kappa == pytest.approx(-1 / 3)
    assert mx.gold_steps == 0 and pd.isna(mx.gold_kappa)
    # aligner: lena disagrees once (r2 close correct, aligner missing) of 15 comparable steps
    assert lena.pipeline_steps == 15 and lena.pipeline_agreement == pytest.approx(14 / 15)
    assert mx.pipeline_agreement == 1.0
    # pay: lena 4 reviews x 10, max 2 x 12
    assert (lena.reviews, lena.pay, mx.reviews, mx.pay) == (4, 40.0, 2, 24.0)


def test_agreement_overall_and_per_step(data):
    overall = reports.overall_agreement(data)
    # units on r4: (i,c) (c,c) (c,c) (c,i): o_ci = o_ic = 2, n_c = 6, n_i = 2, n = 8
    # alpha = 1 - 7 * 4 / (2 * 6 * 2) = -1/6; Fleiss: P_bar 0.5, Pe 0.625 -> -1/3
    assert overall.units == 4
    assert overall.percent == 0.5
    assert overall.alpha == pytest.approx(-1 / 6)
    assert overall.fleiss == pytest.approx(-1 / 3)
    df = reports.agreement_report(data)
    assert row(df, step_id="needs").percent == 1.0
    assert row(df, step_id="greet").percent == 0.0
    assert pd.isna(row(df, step_id="needs").alpha)  # one category only: alpha undefined


def test_disagreements_and_throughput(data):
    dis = reports.disagreements_report(data)
    # r1 offer (lena i vs owner c), r4 greet and close (lena vs max)
    assert sorted(zip(dis["file"], dis["step_id"])) == [("call_001.mp3", "offer"), ("call_004.mp3", "close"),
                                                        ("call_004.mp3", "greet")]
    assert row(dis, file="call_001.mp3").gold == "correct"
    tp = reports.throughput_report(data)
    assert [tuple(r) for r in tp[["listener", "period", "reviews", "pay"]].itertuples(index=False)] == [
        ("lena", "2026-11-02", 2, 20.0), ("lena", "2026-11-09", 2, 20.0), ("max", "2026-11-09", 2, 24.0)]


def test_outcomes_by_step(data):
    df = reports.outcomes_report(data)
    # needs: done r1 r4 r5 (2 orders), not done r3 (missing), r2 not in script -> left out
    needs = row(df, step_id="needs")
    assert (needs.done_calls, needs.done_orders, needs.not_done_calls, needs.not_done_orders) == (3, 2, 1, 0)
    assert needs.done_conversion == pytest.approx(2 / 3)
    assert needs.done_aov == 2250
    assert needs.not_done_conversion == 0.0
    assert needs.conversion_lift == pytest.approx(2 / 3)
    w = stats.wilson(2, 3)
    assert (needs.done_conversion_low, needs.done_conversion_high) == (pytest.approx(w.low), pytest.approx(w.high))
    greet = row(df, step_id="greet")
    assert (greet.done_calls, greet.not_done_calls, greet.done_conversion) == (5, 0, 0.4)
    assert pd.isna(greet.not_done_conversion)  # n = 0


def test_sample_size_table():
    df = reports.sample_size_report(1000)
    assert row(df, confidence=0.95, margin=0.05).sample_size == 278


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_export_formats(data, fmt):
    table = reports.steps_report(data)
    blob = export.table(table, fmt, "steps")
    if fmt == "csv":
        text = blob.decode("utf-8-sig")
        assert text.splitlines()[0].startswith("checklist,step_id,step,reviewed_calls")
        assert "Greeting" in text
    elif fmt == "xlsx":
        ws = openpyxl.load_workbook(io.BytesIO(blob)).active
        assert ws["B1"].value == "step_id" and ws["B2"].value == "greet"
    else:
        assert b"<table" in blob and b"Greeting" in blob
    with pytest.raises(ReportError):
        export.table(table, "pdf")


def test_every_report_builds(db):
    with session_scope(db[0]) as s:
        data = load(s)
        for kind in reports.REPORTS:
            if kind == "situations":
                continue  # needs the sentence models; tests/test_situations.py covers it
            df = reports.build(kind, s, data)
            assert len(df.columns) > 2, kind
            export.table(df, "xlsx", kind)


def test_owner_strikes_out_a_learned_example_on_the_script_page(db, monkeypatch):
    """The script page lists what reviews taught the latest version; unticking an
    example drops it from the next alignment's learning, ticking takes it back."""
    from streamlit.testing.v1 import AppTest

    from pipeline.storage import checklists

    url, ids = db
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CALLREVIEW_ALIGN_MODELS", "tfidf")
    with session_scope(url) as s:
        first, latest = checklists.stored_versions(s, "sales")
        before = checklists.reviewed_examples(s, first.id)
        assert latest.id == checklists.latest_version(s, "sales").id
    at = AppTest.from_file("../review_app/pages/owner_script_improvement.py", default_timeout=60)
    at.session_state["cr_user"] = logged_in(url, ids["owner"])
    at.run()
    assert at.selectbox(key="learned_version").value == latest.id  # the newest by default
    at.selectbox(key="learned_version").select(first.id).run()
    boxes = [b for b in at.checkbox if "подтверждено" in b.label]
    assert boxes and all(b.value for b in boxes) and before
    boxes[0].uncheck().run()
    assert not at.exception, at.exception
    with session_scope(url) as s:
        dropped = [e for e in checklists.learned_examples(s, first.id) if e.dropped]
        after = checklists.reviewed_examples(s, first.id)
    assert len(dropped) == 1 and dropped[0].text in boxes[0].label and dropped[0].text not in after.get(dropped[0].key, [])
    [box] = [b for b in at.checkbox if dropped[0].text in b.label]
    assert box.value is False
    box.check().run()
    with session_scope(url) as s:
        assert checklists.reviewed_examples(s, first.id) == before


PAGES = ["owner_script_improvement", "owner_steps", "owner_operators", "owner_listeners", "owner_sampling", "owner_outcomes"]


CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def test_owner_pages_render(db, monkeypatch):
    """Each report page runs against the seeded database without an exception,
    shows every table with Russian headers and no English values, and refuses listeners."""
    from streamlit.testing.v1 import AppTest

    from review_app import labels

    url, ids = db
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CALLREVIEW_ALIGN_MODELS", "tfidf")  # the sentence models are tested in test_situations.py
    for page in PAGES:
        at = AppTest.from_file(f"../review_app/pages/{page}.py", default_timeout=60)
        at.session_state["cr_user"] = logged_in(url, ids["owner"])
        at.run()
        assert not at.exception, (page, at.exception)
        assert at.title[0].value, page
        for frame in at.dataframe:
            headers = {col: c.get("label", col) for col, c in json.loads(frame.proto.columns).items() if not col.startswith("_")}
            assert [h for h in headers.values() if not CYRILLIC.search(h)] == [], (page, headers)
            shown = {v for col in frame.value.columns for v in frame.value[col] if isinstance(v, str)}
            assert not shown & set(labels.VALUES), (page, shown & set(labels.VALUES))
    at = AppTest.from_file("../review_app/pages/owner_steps.py", default_timeout=60)
    at.run()  # nobody logged in: the page fails closed
    assert at.error[0].value == "Нет доступа к этой странице." and not at.dataframe
    at = AppTest.from_file("../review_app/pages/owner_steps.py", default_timeout=60)
    at.session_state["cr_user"] = logged_in(url, ids["owner"])
    at.run()
    machine = at.dataframe[0].value  # the machine's figures come first, beside the listeners'
    assert {"machine_found", "listeners_done", "estimate"} <= set(machine.columns) and len(machine) == 5
    at = AppTest.from_file("../review_app/pages/owner_steps.py")
    at.session_state["cr_user"] = logged_in(url, ids["lena"])
    at.run()
    assert at.error[0].value == "Нет доступа к этой странице." and not at.title


def test_listener_text_is_shown_as_typed_on_the_owner_pages(db_url, monkeypatch):
    """A listener's urgent reason or a user name in Markdown must not fetch an
    image or render a link in the owner's browser: it is escaped, shown literally."""
    from streamlit.testing.v1 import AppTest

    from pipeline.storage.store import Review

    ids = seed(db_url)
    attack = "![x](https://evil.example/p.png) [оплатите тут](https://evil.example) # Срочно"
    with session_scope(db_url) as s:
        review = s.get(Review, ids["rev_lena_r2"])
        review.urgent, review.urgent_reason = True, attack
        review.urgent_at = review.submitted_at
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file("../review_app/pages/owner_urgent.py", default_timeout=60)
    at.session_state["cr_user"] = logged_in(db_url, ids["owner"])
    at.run()
    assert not at.exception
    shown = [m.value for m in at.markdown if "evil" in m.value]
    assert len(shown) == 1
    assert "![" not in shown[0] and "](" not in shown[0] and "\\!\\[x\\]" in shown[0] and "\\# Срочно" in shown[0]
