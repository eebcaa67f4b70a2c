"""Sample sizes, allocation by operator, priority rules, assignment with overlap and gold."""

from collections import Counter

import pytest
from seed_reports import seed
from sqlalchemy import select

from pipeline.reports import sampling
from pipeline.reports.sampling import Candidate, PriorityRules
from pipeline.storage.store import Assignment, session_scope


def test_sample_size_cochran():
    assert sampling.sample_size(1000, 0.95, 0.05) == 278
    assert sampling.sample_size(278, 0.95, 0.05) == 162  # 384.146 / (1 + 383.146/278) = 161.6


def test_allocate_proportional_largest_remainder():
    # exact shares 139, 83.4, 55.6 -> floors 139, 83, 55; the one left goes to the largest remainder (C)
    assert sampling.allocate({"A": 500, "B": 300, "C": 200}, 278) == {"A": 139, "B": 83, "C": 56}
    assert sampling.allocate({"A": 2, "B": 10}, 12) == {"A": 2, "B": 10}
    assert sampling.allocate({"A": 1, "B": 1}, 5) == {"A": 1, "B": 1}


def test_allocate_floor_keeps_small_operators_heard():
    assert sampling.allocate({"A": 10, "B": 1}, 4) == {"A": 4, "B": 0}
    assert sampling.allocate({"A": 10, "B": 1}, 4, floor=1) == {"A": 3, "B": 1}
    # too few calls to give everyone the floor: plain proportional
    assert sampling.allocate({"A": 10, "B": 1, "C": 1}, 2, floor=1) == {"A": 2, "B": 0, "C": 0}


def test_stratified_sample_with_priority():
    # Anna 10 calls (ids 0-9), 4 of them flagged; Boris 10 calls, none flagged; 10 to draw -> 5 each.
    cands = [Candidate(i, "Anna", adherence=0.3 if i < 3 else 0.9, outcome="order", duration=120) for i in range(10)]
    cands[9] = Candidate(9, "Anna", adherence=0.9, outcome="no_order", duration=30)  # two reasons
    cands += [Candidate(10 + i, "Boris", adherence=0.9, outcome="order", duration=120) for i in range(10)]
    picked = sampling.stratified_sample(cands, 10, PriorityRules(share=0.5), seed=1)
    per_op = Counter(p.operator for p in picked)
    assert per_op == {"Anna": 5, "Boris": 5}
    anna = [p for p in picked if p.operator == "Anna"]
    # floor(5 * 0.5) = 2 priority places; the call with two reasons comes first
    flagged = [p for p in anna if p.reasons]
    assert len(flagged) >= 2
    # Only the two priority places are marked as not drawn at random.
    assert sum(not p.at_random for p in anna) == 2 and all(p.reasons for p in anna if not p.at_random)
    assert all(p.at_random for p in picked if p.operator == "Boris")
    assert any(p.recording_id == 9 and p.reasons == ("no order", "short call") for p in picked)
    # share 1.0: all four flagged calls are in
    picked = sampling.stratified_sample(cands, 10, PriorityRules(share=1.0), seed=1)
    assert {0, 1, 2, 9} <= {p.recording_id for p in picked}
    assert len({p.recording_id for p in picked}) == 10


def test_plan_assignments_overlap_and_gold():
    plan = sampling.plan_assignments(list(range(1, 11)), [100, 200, 300], overlap_share=0.2, gold_ids=[900, 901],
                                     gold_per_listener=1, seed=3, next_position={100: 5})
    regular = [a for a in plan.items if not a.is_gold]
    gold = [a for a in plan.items if a.is_gold]
    assert len(regular) == 12  # 10 calls + 2 overlap copies
    assert Counter(a.listener_id for a in regular) == {100: 4, 200: 4, 300: 4}
    per_call = Counter(a.recording_id for a in regular)
    assert sorted(per_call.values()) == [1] * 8 + [2] * 2
    assert len({(a.recording_id, a.listener_id) for a in plan.items}) == len(plan.items)  # never twice to one listener
    assert Counter(a.listener_id for a in gold) == {100: 1, 200: 1, 300: 1}
    assert [a.position for a in plan.for_listener(100)] == [5, 6, 7, 8, 9]
    assert [a.position for a in plan.for_listener(200)] == [0, 1, 2, 3, 4]
    with pytest.raises(sampling.SamplingError):
        sampling.plan_assignments([1], [100], overlap_share=0.5)
    with pytest.raises(sampling.SamplingError):
        sampling.plan_assignments([1], [])


def test_sample_and_assign_writes_rows(db_url):
    url = db_url
    ids = seed(url)
    with session_scope(url) as s:
        # r6 is the only call in nobody's queue; r1 is the owner's gold call
        assert [c.recording_id for c in sampling.load_candidates(s)] == [ids["r6"]]
        assert sampling.gold_recording_ids(s) == [ids["r1"]]
        res = sampling.sample_and_assign(s, overlap_share=0.0, gold_per_listener=1, seed=0)
        assert (res.population, res.size) == (1, 1)
    with session_scope(url) as s:
        new = s.scalars(select(Assignment).where(Assignment.status == "new")).all()
        # r6 to one listener, drawn at random (it has no priority reason); gold r1 to max only (lena already has it)
        assert sorted((a.recording_id, a.is_gold, a.drawn_at_random) for a in new) == sorted(
            [(ids["r6"], False, True), (ids["r1"], True, False)])
        gold = next(a for a in new if a.is_gold)
        assert gold.listener_id == ids["max"]
        assert gold.position > 0  # appended after max's earlier calls
        with pytest.raises(sampling.SamplingError, match="No active listener named bob"):
            sampling.sample_and_assign(s, listeners=["bob"])
        # the same plan written again (a second owner tab) adds nothing
        assert sampling.write_assignments(s, res.plan) == 0
