"""pipeline.review.review on real databases (SQLite and PostgreSQL): queue, blind call
view, marks, drafts, submit-and-lock, concurrency, assignment, progress, urgent."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from test_review_data import OPERATOR_NAME, SECRETS, STEP_IDS, add_call, build_world

from pipeline.reports import sampling
from pipeline.review import assignments, review
from pipeline.review.review import write_session
from pipeline.storage.store import Assignment, Review, StepMark, session_scope
from pipeline.vocabulary import Mark, ReviewStatus


@pytest.fixture
def world(tmp_path, db_url):
    return build_world(tmp_path, url=db_url, calls=3, listeners=2, with_audio=False)


def _mark_all(url, listener_id, aid, mark=Mark.CORRECT):
    with write_session(url) as s:
        for sid in STEP_IDS:
            review.save_mark(s, listener_id, aid, sid, mark)


def test_queue_status_and_order(world):
    anna = world.listener_ids[0]
    first, second, _ = world.assignment_ids["anna"]
    with write_session(world.url) as s:
        review.save_mark(s, anna, second, "greeting", Mark.CORRECT)
    with session_scope(world.url) as s:
        queue = review.listener_queue(s, anna)
    assert [q.assignment_id for q in queue][0] == second  # in progress first
    assert {q.status for q in queue} == {"new", "in_progress"}
    assert [q.number for q in queue] == [2, 1, 3]
    assert queue[0].marked == 1


def test_call_view_is_blind(world):
    anna = world.listener_ids[0]
    aid = world.assignment_ids["anna"][0]
    with write_session(world.url) as s:
        view = review.open_call(s, anna, aid)
    blob = repr(view)
    for secret in SECRETS.values():
        assert secret not in blob
    assert OPERATOR_NAME not in blob
    assert "[телефон]" in blob and "[e-mail]" in blob and "[номер карты]" in blob and "[имя]" in blob
    greeting = view.steps[0]
    assert greeting.id == "greeting" and greeting.suggestion.found and greeting.mark is None
    assert view.steps[STEP_IDS.index("objection")].suggestion.found is False
    assert view.off_script and view.off_script[0].utterance_idx == 7


def test_other_listeners_call_is_refused(world):
    with write_session(world.url) as s, pytest.raises(review.NotYourCall):
        review.open_call(s, world.listener_ids[1], world.assignment_ids["anna"][0])


def test_draft_survives_and_submit_validates_then_locks(world):
    anna = world.listener_ids[0]
    aid = world.assignment_ids["anna"][0]
    with write_session(world.url) as s:
        review.save_mark(s, anna, aid, "greeting", Mark.INCORRECT, "не назвала магазин")
        review.save_comment(s, anna, aid, "need", "коротко")
        review.confirm_off_script(s, anna, aid, 7, True, "доставка в воскресенье")
        review.add_moment(s, anna, aid, 30.0, "вывоз старой техники")
        review.set_urgent(s, anna, aid, True, "клиент готов купить сегодня")
    with session_scope(world.url) as s:
        view = review.open_call(s, anna, aid)
    assert view.steps[0].mark == Mark.INCORRECT and view.steps[0].comment == "не назвала магазин"
    assert view.steps[1].mark is None and view.steps[1].comment == "коротко"
    assert view.off_script[0].confirmed_id and view.off_script[0].description == "доставка в воскресенье"
    assert [m.description for m in view.moments] == ["вывоз старой техники"]
    assert view.urgent and view.urgent_reason == "клиент готов купить сегодня"

    with write_session(world.url) as s, pytest.raises(review.IncompleteReview) as exc:
        review.submit_review(s, anna, aid)
    assert "Выявление потребности" in str(exc.value)

    _mark_all(world.url, anna, aid)
    with write_session(world.url) as s:
        r = review.submit_review(s, anna, aid)
    assert r.status == ReviewStatus.SUBMITTED and r.submitted_at is not None
    with write_session(world.url) as s, pytest.raises(review.ReviewLocked):
        review.save_mark(s, anna, aid, "greeting", Mark.INCORRECT)
    with session_scope(world.url) as s:
        assert s.get(Assignment, aid).status == "submitted"
        assert s.scalar(select(StepMark.comment).where(StepMark.step_id == "need")) == "коротко"


def test_same_listener_submitting_twice_yields_one_review(world):
    anna = world.listener_ids[0]
    aid = world.assignment_ids["anna"][0]
    _mark_all(world.url, anna, aid)
    results, errors = [], []
    barrier = threading.Barrier(4)

    def submit():
        try:
            barrier.wait()
            with write_session(world.url) as s:
                results.append(review.submit_review(s, anna, aid).id)
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    with session_scope(world.url) as s:
        reviews = list(s.scalars(select(Review).where(Review.assignment_id == aid)))
    assert len(reviews) == 1 and reviews[0].status == "submitted"


def test_two_tabs_of_one_listener_never_overwrite_each_other_unseen(world):
    """Each tab writes from the version it shows: the second writer of a stale
    view is refused (StaleReview) and the first's value is kept; a stale tab
    cannot submit values it never showed; after a submit every write is refused."""
    anna = world.listener_ids[0]
    aid = world.assignment_ids["anna"][0]
    with write_session(world.url) as s:
        tab_a = review.open_call(s, anna, aid)
    with write_session(world.url) as s:
        tab_b = review.open_call(s, anna, aid)
    assert tab_a.version == tab_b.version
    with write_session(world.url) as s:
        review.save_mark(s, anna, aid, "greeting", Mark.CORRECT, version=tab_a.version)
    with pytest.raises(review.StaleReview), write_session(world.url) as s:
        review.save_mark(s, anna, aid, "greeting", Mark.INCORRECT, version=tab_b.version)
    with pytest.raises(review.StaleReview), write_session(world.url) as s:
        review.set_urgent(s, anna, aid, True, "стоит перезвонить", version=tab_b.version)
    with session_scope(world.url) as s:
        assert s.scalar(select(StepMark.mark).where(StepMark.step_id == "greeting")) == Mark.CORRECT
        assert not s.scalar(select(Review.urgent).where(Review.assignment_id == aid))
    with write_session(world.url) as s:  # tab B refreshed: it sees A's mark and writes on from there
        tab_b = review.call_view(s, anna, aid)
        assert tab_b.version == tab_a.version + 1 and tab_b.steps[0].mark == Mark.CORRECT
        for sid in STEP_IDS:
            review.save_mark(s, anna, aid, sid, Mark.CORRECT, version=tab_b.version)
            tab_b.version += 1
    with pytest.raises(review.StaleReview), write_session(world.url) as s:
        review.submit_review(s, anna, aid, version=tab_a.version + 1)  # tab A never saw B's marks
    with write_session(world.url) as s:
        assert review.submit_review(s, anna, aid, version=tab_b.version).status == ReviewStatus.SUBMITTED
    for version in (tab_b.version, tab_b.version + 1):
        with pytest.raises(review.ReviewLocked), write_session(world.url) as s:
            review.save_mark(s, anna, aid, "greeting", Mark.INCORRECT, version=version)
    with pytest.raises(review.StaleReview), write_session(world.url) as s:
        review.submit_review(s, anna, aid, version=tab_b.version)  # a stale submit is never "sent, thank you"


def test_two_listeners_submitting_at_once_both_land(world):
    pairs = [(world.listener_ids[0], world.assignment_ids["anna"][0]), (world.listener_ids[1], world.assignment_ids["boris"][0])]
    for lid, aid in pairs:
        _mark_all(world.url, lid, aid)
    barrier = threading.Barrier(len(pairs))
    errors = []

    def submit(lid, aid):
        try:
            barrier.wait()
            with write_session(world.url) as s:
                review.submit_review(s, lid, aid)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=p) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with session_scope(world.url) as s:
        statuses = [s.scalar(select(Review.status).where(Review.assignment_id == aid)) for _, aid in pairs]
    assert statuses == ["submitted", "submitted"]


def test_assign_sample_progress_and_urgent(world):
    with session_scope(world.url) as s:
        for i in range(6):
            add_call(s, f"extra_{i}.wav", operator="Пётр" if i < 4 else "Иван")
    with write_session(world.url) as s:
        ids = sampling.sample_recordings(s, 4, stratify=True, seed=1)
        assert len(ids) == 4
        ops = [s.get(__import__("pipeline.storage.store", fromlist=["Recording"]).Recording, i).operator for i in ids]
        assert ops.count("Пётр") >= 2 and ops.count("Иван") >= 1
        res = assignments.assign(s, ids, world.listener_ids, drawn_at_random=True)
        assert res.created == 4 and set(res.per_listener.values()) == {2}
        # The random draw is remembered: the reports correct the machine with these calls only.
        drawn = s.scalars(select(Assignment.drawn_at_random).where(Assignment.recording_id.in_(ids))).all()
        assert drawn == [True] * 4
        assert not s.scalar(select(Assignment.drawn_at_random).where(Assignment.id == world.assignment_ids["anna"][0]))
        again = assignments.assign(s, ids[:1], [world.listener_ids[0]])  # round-robin put ids[0] with anna
        assert again.skipped == 1
        with pytest.raises(review.ReviewError):
            assignments.assign(s, ids, [world.owner_id])
    anna = world.listener_ids[0]
    aid = world.assignment_ids["anna"][0]
    with write_session(world.url) as s:
        review.set_urgent(s, anna, aid, True, "уйдёт к конкурентам")
    _mark_all(world.url, anna, aid)
    with write_session(world.url) as s:
        review.submit_review(s, anna, aid)
    with session_scope(world.url) as s:
        progress = {p.name: p for p in assignments.listener_progress(s)}
        flags = assignments.urgent_flags(s)
    assert progress["anna"].submitted == 1 and progress["anna"].assigned == 5 and progress["anna"].urgent_open == 1
    assert progress["anna"].earned == 50.0
    assert [f.reason for f in flags] == ["уйдёт к конкурентам"] and flags[0].listener == "anna"
    with write_session(world.url) as s:
        assignments.mark_urgent_handled(s, flags[0].review_id)
    with session_scope(world.url) as s:
        assert assignments.urgent_flags(s) == [] and assignments.count_open_urgent(s) == 0


def test_the_script_reads_the_same_in_every_call(world):
    """The greeting example says «меня зовут Анна». Masked with each call's own
    operator, it would read "[имя]" only in Анна's calls and tell the listener
    whose call it is; it reads the same in every call."""
    anna = world.listener_ids[0]
    with write_session(world.url) as s:
        other = add_call(s, "other.wav", operator="Анна Кузнецова")
        assignments.assign(s, [other], [anna])
        aid = s.scalar(select(Assignment.id).where(Assignment.recording_id == other, Assignment.listener_id == anna))
    with write_session(world.url) as s:
        views = [review.open_call(s, anna, world.assignment_ids["anna"][0]), review.open_call(s, anna, aid)]
    scripts = [[(step.description, step.examples) for step in v.steps] for v in views]
    assert scripts[0] == scripts[1]
    greeting = " ".join(scripts[0][0][1])
    assert "Анна" not in repr(scripts[0]) and "меня зовут [имя]" in greeting
