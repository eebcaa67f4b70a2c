"""Which calls listeners hear: sample size, a sample stratified by operator
with priority rules, and assignment to listeners with overlap and gold calls.

The functions in the first half are pure (typed data in, typed data out); the
``load_*``/``write_*`` functions at the bottom are the thin database edge.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.errors import CallreviewError
from pipeline.reports import stats
from pipeline.review import assignments
from pipeline.storage.store import (
    AlignmentRow,
    Assignment,
    Outcome,
    Recording,
    Review,
    User,
    as_utc,
)
from pipeline.vocabulary import ReviewStatus, Role, SaleOutcome


class SamplingError(CallreviewError):
    """The sample or the assignment cannot be made as asked."""


def sample_size(population: int, confidence: float = 0.95, margin: float = 0.05) -> int:
    """Calls to review so that a rate is known to +-margin (Cochran with the
    finite-population correction): 1000 calls at 95% +-5% -> 278."""
    return stats.cochran(population, confidence=confidence, margin=margin)


@dataclass(frozen=True)
class Candidate:
    """A call that could be sampled, with what the priority rules look at."""

    recording_id: int
    operator: str | None = None
    adherence: float | None = None  # pipeline's share of script steps found
    outcome: str | None = None  # order | no_order | cancelled | other | None (unknown)
    duration: float | None = None


@dataclass(frozen=True)
class PriorityRules:
    """Calls worth hearing first. ``share`` caps how much of each operator's
    quota priority calls may take; the rest is drawn at random so that the
    rates in the reports still describe the typical call."""

    low_adherence: float | None = 0.6
    no_order: bool = True
    short_call_s: float | None = 60.0
    share: float = 0.5

    def reasons(self, c: Candidate) -> tuple[str, ...]:
        out = []
        if self.low_adherence is not None and c.adherence is not None and c.adherence < self.low_adherence:
            out.append("low adherence")
        if self.no_order and c.outcome is not None and c.outcome != SaleOutcome.ORDER:
            out.append("no order")
        if self.short_call_s is not None and c.duration is not None and c.duration < self.short_call_s:
            out.append("short call")
        return tuple(out)


@dataclass(frozen=True)
class Picked:
    recording_id: int
    operator: str | None
    reasons: tuple[str, ...] = ()
    at_random: bool = True  # False: taken first for its priority reasons


def allocate(strata: dict[str, int], n: int, floor: int = 0) -> dict[str, int]:
    """Split n over strata in proportion to their sizes (largest remainder),
    never more than a stratum holds; with ``floor``, each stratum gets that many
    first when n allows, so a small operator is still heard."""
    total = sum(strata.values())
    n = min(n, total)
    if n <= 0 or total == 0:
        return {k: 0 for k in strata}
    base = {k: min(size, floor) for k, size in strata.items()}
    if sum(base.values()) > n:
        base = {k: 0 for k in strata}
    rest = {k: size - base[k] for k, size in strata.items()}
    left, room = n - sum(base.values()), sum(rest.values())
    exact = {k: base[k] + (left * size / room if room else 0.0) for k, size in rest.items()}
    alloc = {k: min(strata[k], math.floor(v)) for k, v in exact.items()}
    # Hand out what is left by largest remainder, then to strata that still have room.
    order = sorted(strata, key=lambda k: (-(exact[k] - math.floor(exact[k])), k))
    left = n - sum(alloc.values())
    while left > 0:
        progressed = False
        for k in order:
            if left == 0:
                break
            if alloc[k] < strata[k]:
                alloc[k] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return alloc


def stratified_sample(
    candidates: Sequence[Candidate], n: int, rules: PriorityRules | None = None, seed: int | None = 0, floor: int = 0
) -> list[Picked]:
    """n calls, split over operators in proportion to their call counts (at least
    ``floor`` each while n allows); within each operator priority calls first (up to
    ``rules.share`` of the quota), the rest at random."""
    rules = rules or PriorityRules()
    rng = random.Random(seed)
    by_op: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_op[c.operator or ""].append(c)
    quota = allocate({op: len(cs) for op, cs in by_op.items()}, n, floor)
    picked: list[Picked] = []
    for op in sorted(by_op):
        cs = sorted(by_op[op], key=lambda c: c.recording_id)
        rng.shuffle(cs)
        k = quota[op]
        flagged = [c for c in cs if rules.reasons(c)]
        # More reasons first; the shuffle above breaks ties at random.
        flagged.sort(key=lambda c: -len(rules.reasons(c)))
        n_priority = min(len(flagged), math.floor(k * rules.share + 1e-9))
        chosen = flagged[:n_priority]
        taken = {c.recording_id for c in chosen}
        chosen += [c for c in cs if c.recording_id not in taken][: k - n_priority]
        picked += [Picked(c.recording_id, c.operator, rules.reasons(c), i >= n_priority) for i, c in enumerate(chosen)]
    return picked


@dataclass(frozen=True)
class PlannedAssignment:
    recording_id: int
    listener_id: int
    is_gold: bool
    position: int
    drawn_at_random: bool = False


@dataclass
class AssignmentPlan:
    items: list[PlannedAssignment] = field(default_factory=list)

    def for_listener(self, listener_id: int) -> list[PlannedAssignment]:
        return sorted((a for a in self.items if a.listener_id == listener_id), key=lambda a: a.position)


def plan_assignments(
    recording_ids: Sequence[int],
    listener_ids: Sequence[int],
    overlap_share: float = 0.0,
    gold_ids: Sequence[int] = (),
    gold_per_listener: int = 0,
    seed: int = 0,
    next_position: dict[int, int] | None = None,
    already: Iterable[tuple[int, int]] = (),
    drawn_at_random: Iterable[int] = (),
) -> AssignmentPlan:
    """Spread calls over listeners evenly; ``overlap_share`` of them go to a
    second listener too (for peer agreement); each listener also gets
    ``gold_per_listener`` gold calls at random places in the queue, marked
    ``is_gold`` only in the database, never on screen. Calls in
    ``drawn_at_random`` are marked as a random draw (gold calls never are)."""
    if not listener_ids:
        raise SamplingError("No active listeners to assign calls to. Add a listener first (callreview users add).")
    if overlap_share > 0 and len(listener_ids) < 2:
        raise SamplingError("Overlap needs at least two listeners; set the overlap share to 0 or add a listener.")
    if not 0 <= overlap_share <= 1:
        raise SamplingError(f"Overlap share must be between 0 and 1, got {overlap_share}.")
    rng = random.Random(seed)
    taken = set(already)
    load = {lid: 0 for lid in listener_ids}
    queues: dict[int, list[tuple[int, bool]]] = {lid: [] for lid in listener_ids}

    def least_loaded(rec: int, exclude: set[int]) -> int | None:
        free = [lid for lid in listener_ids if lid not in exclude and (rec, lid) not in taken]
        if not free:
            return None
        return min(free, key=lambda lid: (load[lid], listener_ids.index(lid)))

    ids = list(recording_ids)
    rng.shuffle(ids)
    n_overlap = round(len(ids) * overlap_share)
    for i, rec in enumerate(ids):
        got: set[int] = set()
        for _ in range(2 if i < n_overlap else 1):
            lid = least_loaded(rec, got)
            if lid is None:
                break
            queues[lid].append((rec, False))
            taken.add((rec, lid))
            load[lid] += 1
            got.add(lid)
    for lid in listener_ids:
        pool = [g for g in gold_ids if (g, lid) not in taken]
        for g in rng.sample(pool, min(gold_per_listener, len(pool))):
            queues[lid].insert(rng.randint(0, len(queues[lid])), (g, True))
            taken.add((g, lid))
    plan = AssignmentPlan()
    random_ids = set(drawn_at_random)
    for lid, queue in queues.items():
        start = (next_position or {}).get(lid, 0)
        plan.items += [PlannedAssignment(rec, lid, gold, start + j, rec in random_ids and not gold) for j, (rec, gold) in enumerate(queue)]
    return plan


# --- database edge -----------------------------------------------------------


def load_candidates(
    session: Session, include_assigned: bool = False, since: dt.datetime | None = None
) -> list[Candidate]:
    """Aligned calls (newest alignment each) that nobody has in a queue yet."""
    assigned = set(session.scalars(select(Assignment.recording_id)))
    outcomes = {o.recording_id: o.outcome for o in session.scalars(select(Outcome)) if o.recording_id}
    latest: dict[int, AlignmentRow] = {}
    for row in session.scalars(select(AlignmentRow).order_by(AlignmentRow.created_at, AlignmentRow.id)):
        latest[row.recording_id] = row
    out = []
    for rec in session.scalars(select(Recording).where(Recording.id.in_(latest)).order_by(Recording.id)):
        if not include_assigned and rec.id in assigned:
            continue
        if since is not None and rec.created_at is not None and rec.created_at < as_utc(since):
            continue
        out.append(
            Candidate(
                recording_id=rec.id,
                operator=rec.operator,
                adherence=latest[rec.id].record.adherence(),
                outcome=outcomes.get(rec.id),
                duration=rec.duration,
            )
        )
    return out




def gold_recording_ids(session: Session) -> list[int]:
    """Calls the owner has reviewed and submitted: their marks are the answer key."""
    stmt = (
        select(Assignment.recording_id)
        .join(Review, Review.assignment_id == Assignment.id)
        .join(User, User.id == Assignment.listener_id)
        .where(User.role == Role.OWNER, Review.status == ReviewStatus.SUBMITTED)
        .distinct()
    )
    return sorted(session.scalars(stmt))


def active_listener_names(session: Session) -> list[str]:
    stmt = select(User.name).where(User.role == Role.LISTENER, User.active.is_(True)).order_by(User.name)
    return list(session.scalars(stmt))


def active_listener_ids(session: Session, names: Sequence[str] = ()) -> list[int]:
    stmt = select(User).where(User.role == Role.LISTENER, User.active.is_(True)).order_by(User.id)
    users = list(session.scalars(stmt))
    if names:
        by_name = {u.name: u for u in users}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise SamplingError(f"No active listener named {', '.join(missing)}. Check the names in the Users page.")
        users = [by_name[n] for n in names]
    return [u.id for u in users]


def write_assignments(session: Session, plan: AssignmentPlan) -> int:
    """Put the planned calls in the listeners' queues; returns how many were added."""
    return sum(assignments.add_assignment(session, a.recording_id, a.listener_id, a.position, a.is_gold, a.drawn_at_random)
               for a in plan.items)


def sample_recordings(session: Session, n: int, stratify: bool = False, seed: int | None = None,
                      unassigned_only: bool = True) -> list[int]:
    """``n`` reviewable recordings at random, as the owner's assign page and
    ``callreview assign --sample`` draw them; ``stratify`` spreads them across
    operators in proportion to their calls, at least one each while n allows."""
    pool = [Candidate(r.id, r.operator) for r in assignments.reviewable_recordings(session, unassigned_only=unassigned_only)]
    if stratify:
        return [p.recording_id for p in stratified_sample(pool, n, PriorityRules(share=0.0), seed, floor=1)]
    ids = [c.recording_id for c in pool]
    random.Random(seed).shuffle(ids)
    return ids[:n]


@dataclass
class SampleResult:
    population: int
    size: int
    picked: list[Picked]
    plan: AssignmentPlan
    written: bool


def sample_and_assign(
    session: Session,
    n: int | None = None,
    confidence: float = 0.95,
    margin: float = 0.05,
    rules: PriorityRules | None = None,
    listeners: Sequence[str] = (),
    overlap_share: float = 0.1,
    gold_per_listener: int = 2,
    seed: int = 0,
    dry_run: bool = False,
) -> SampleResult:
    """The whole sampling step as the CLI and the owner page run it."""
    candidates = load_candidates(session)
    size = n if n is not None else sample_size(len(candidates), confidence, margin)
    picked = stratified_sample(candidates, size, rules, seed)
    listener_ids = active_listener_ids(session, listeners)
    already = {(r, l) for r, l in session.execute(select(Assignment.recording_id, Assignment.listener_id))}
    next_pos = {
        lid: (pos or 0) + 1
        for lid, pos in session.execute(select(Assignment.listener_id, func.max(Assignment.position)).group_by(Assignment.listener_id))
    }
    plan = plan_assignments(
        [p.recording_id for p in picked],
        listener_ids,
        overlap_share=overlap_share,
        gold_ids=gold_recording_ids(session),
        gold_per_listener=gold_per_listener,
        seed=seed,
        next_position=next_pos,
        already=already,
        drawn_at_random=[p.recording_id for p in picked if p.at_random],
    )
    if not dry_run:
        write_assignments(session, plan)
    return SampleResult(len(candidates), size, picked, plan, not dry_run)
