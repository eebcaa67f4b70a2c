"""What the owner reports read: one pass over the database (``load``) into plain
records (``ReportData``), and how a listener's mark becomes a category.

How a listener's mark becomes a category (``categorize``): the review app asks
for one mark per step (correct / incorrect / not in script). "Incorrect" on a
step the aligner did not find at all means the step was missing from the call;
on a step it found, that the step was done badly. Rates use one verdict per
call and step: the owner's (gold) review when there is one, else the first
submitted listener review.
"""


from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import CallreviewError
from pipeline.speech.transcript import OPERATOR, Utterance
from pipeline.storage.store import (
    AlignmentRow,
    Assignment,
    ChecklistVersion,
    Outcome,
    Recording,
    Review,
    StepMark,
    User,
    UtteranceRow,
    as_utc,
)
from pipeline.vocabulary import Category, ReviewStatus, Role, StepStatus

DONE = (Category.CORRECT, Category.INCORRECT)


class ReportError(CallreviewError):
    """A report cannot be built or written as asked."""


def categorize(mark: str | None, pipeline_status: str | None) -> str | None:
    """One listener verdict for a step: correct, incorrect, not_in_script or missing."""
    if mark in (Category.CORRECT, Category.NOT_IN_SCRIPT, Category.MISSING):
        return mark
    not_found = pipeline_status in (StepStatus.MISSING, None)
    if mark == Category.INCORRECT:
        return Category.MISSING if not_found else Category.INCORRECT
    # Unmarked (only in drafts): the aligner's "missing" stands until a listener says otherwise.
    return Category.MISSING if pipeline_status == StepStatus.MISSING else None


@dataclass(frozen=True)
class Judgement:
    """One reviewer's verdict on one step of one call (submitted reviews only)."""

    review_id: int
    recording_id: int
    reviewer: str
    reviewer_role: str  # owner | listener
    is_gold: bool  # the assignment was a gold call in a listener's queue
    step_id: str
    mark: str | None
    pipeline_status: str | None
    category: str | None
    comment: str
    submitted_at: dt.datetime | None


@dataclass
class CallInfo:
    recording_id: int
    name: str
    operator: str
    kind: str
    duration: float | None
    call_time: dt.datetime | None
    listen_path: str | None
    checklist_id: str | None = None
    version: int | None = None
    steps: list[tuple[str, str]] = field(default_factory=list)  # (id, title) in script order
    pipeline: dict[str, str] = field(default_factory=dict)  # step id -> found | missing
    off_script: int | None = None  # operator sentences the aligner found off-script (None: not aligned)
    rating: float | None = None  # the visitor's rating of a chat, from the export's metadata
    answered: bool = True  # False: a chat the operator never replied to (a missed dialog)
    outcome: str | None = None
    amount: float | None = None
    drawn_at_random: bool = False  # in a listener's queue by a random draw, not by priority or by hand

    @property
    def auto_adherence(self) -> float | None:
        if not self.pipeline:
            return None
        return sum(s == StepStatus.FOUND for s in self.pipeline.values()) / len(self.pipeline)


@dataclass
class ReviewInfo:
    review_id: int
    recording_id: int
    reviewer: str
    reviewer_role: str
    rate: float
    is_gold: bool
    submitted_at: dt.datetime | None
    alignment_version: int | None = None


@dataclass
class ReportData:
    calls: dict[int, CallInfo]
    reviews: list[ReviewInfo]
    judgements: list[Judgement]
    step_titles: dict[tuple[str, str], str] = field(default_factory=dict)  # (checklist, step) -> title
    utterances: dict[int, list[Utterance]] = field(default_factory=dict)

    def verdicts(self) -> dict[tuple[int, str], Judgement]:
        """One judgement per (call, step): the owner's, else the first submitted listener's."""
        best: dict[tuple[int, str], Judgement] = {}
        for j in self.judgements:
            if j.category is None:
                continue
            key = (j.recording_id, j.step_id)
            cur = best.get(key)
            if cur is None or _rank(j) < _rank(cur):
                best[key] = j
        return best

    def title(self, checklist_id: str | None, step_id: str) -> str:
        return self.step_titles.get((checklist_id or "", step_id), step_id)


def _rank(j: Judgement) -> tuple:
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return (0 if j.reviewer_role == Role.OWNER else 1, as_utc(j.submitted_at) or far, j.review_id)


TIME_KEYS = ("call_time", "started_at", "start_time", "datetime", "time", "date")
RATING_KEYS = ("rating", "visitor_rating", "score", "оценка", "рейтинг")


def rating(meta: dict | None) -> float | None:
    """The visitor's rating from a chat export's metadata (``rating`` column of
    ``--metadata``, "4", "4,5" or "4/5" read as 4.0, 4.5, 4.0); None if absent or unreadable."""
    for key in RATING_KEYS:
        value = str((meta or {}).get(key) or "").strip().split("/")[0].replace(",", ".")
        if value:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def call_time(rec: Recording, outcome_time: dt.datetime | None = None) -> dt.datetime | None:
    """When the call happened: the ingest metadata if it says, else the CRM, else ingest time."""
    for key in TIME_KEYS:
        value = (rec.source_meta or {}).get(key)
        if value:
            try:
                return as_utc(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")))
            except ValueError:
                continue
    return as_utc(outcome_time) or as_utc(rec.created_at)


def load(session: Session, with_utterances: bool = True) -> ReportData:
    """Read everything the reports need in a handful of queries."""
    outcomes = {o.recording_id: o for o in session.scalars(select(Outcome)) if o.recording_id is not None}
    versions = {v.id: v for v in session.scalars(select(ChecklistVersion))}
    step_titles: dict[tuple[str, str], str] = {}
    for v in sorted(versions.values(), key=lambda v: (v.checklist_id, v.version)):
        for s in (v.content or {}).get("steps", []):
            step_titles[(v.checklist_id, s["id"])] = s.get("title", s["id"])
    latest: dict[int, AlignmentRow] = {}
    alignments: dict[int, AlignmentRow] = {}
    for row in session.scalars(select(AlignmentRow).order_by(AlignmentRow.id)):
        latest[row.recording_id] = row
        alignments[row.id] = row

    def steps_of(row: AlignmentRow) -> tuple[list[tuple[str, str]], dict[str, str]]:
        v = versions.get(row.checklist_version_id)
        content_steps = (v.content or {}).get("steps", []) if v else []
        order = [(s["id"], s.get("title", s["id"])) for s in content_steps]
        pipeline = {s.id: s.status for s in row.record.steps}
        if not order:
            order = [(sid, sid) for sid in pipeline]
        return order, pipeline

    drawn = set(session.scalars(select(Assignment.recording_id).where(Assignment.drawn_at_random.is_(True))))
    answered = set(session.scalars(select(UtteranceRow.recording_id).where(UtteranceRow.speaker == OPERATOR).distinct()))
    calls: dict[int, CallInfo] = {}
    for rec in session.scalars(select(Recording).order_by(Recording.id)):
        o = outcomes.get(rec.id)
        info = CallInfo(
            recording_id=rec.id,
            name=rec.original_name,
            operator=rec.operator or "(unknown)",
            kind=rec.kind or "audio",
            duration=rec.duration,
            call_time=call_time(rec, o.time if o else None),
            listen_path=rec.listen_path,
            outcome=o.outcome if o else None,
            amount=o.amount if o else None,
            drawn_at_random=rec.id in drawn,
            rating=rating(rec.source_meta),
            answered=rec.kind != "chat" or rec.id in answered,
        )
        row = latest.get(rec.id)
        if row is not None:
            v = versions.get(row.checklist_version_id)
            info.checklist_id, info.version = (v.checklist_id, v.version) if v else (None, None)
            info.steps, info.pipeline = steps_of(row)
            info.off_script = len((row.result or {}).get("off_script") or [])
        calls[rec.id] = info

    reviews: list[ReviewInfo] = []
    review_pipeline: dict[int, dict[str, str]] = {}
    stmt = (
        select(Review, Assignment, User)
        .join(Assignment, Assignment.id == Review.assignment_id)
        .join(User, User.id == Assignment.listener_id)
        .where(Review.status == ReviewStatus.SUBMITTED)
        .order_by(Review.id)
    )
    for review, a, user in session.execute(stmt).all():
        row = alignments.get(review.alignment_id) if review.alignment_id else latest.get(a.recording_id)
        version = None
        if row is not None:
            review_pipeline[review.id] = steps_of(row)[1]
            v = versions.get(row.checklist_version_id)
            version = v.version if v else None
        reviews.append(
            ReviewInfo(review.id, a.recording_id, user.name, user.role, user.rate or 0.0, a.is_gold,
                       as_utc(review.submitted_at), version)
        )
    by_review = {r.review_id: r for r in reviews}
    judgements = []
    if by_review:
        for m in session.scalars(select(StepMark).where(StepMark.review_id.in_(by_review)).order_by(StepMark.id)):
            r = by_review[m.review_id]
            status = review_pipeline.get(r.review_id, {}).get(m.step_id)
            judgements.append(
                Judgement(r.review_id, r.recording_id, r.reviewer, r.reviewer_role, r.is_gold, m.step_id, m.mark,
                          status, categorize(m.mark, status), m.comment or "", r.submitted_at)
            )
    # Plain records, not ORM rows, so the app can cache ReportData.
    utterances: dict[int, list[Utterance]] = defaultdict(list)
    if with_utterances:
        rows = session.execute(select(UtteranceRow.recording_id, UtteranceRow.speaker, UtteranceRow.start, UtteranceRow.end,
                                      UtteranceRow.channel).order_by(UtteranceRow.recording_id, UtteranceRow.idx))
        for rid, speaker, start, end, channel in rows:
            utterances[rid].append(Utterance(speaker, start, end, "", channel))
    return ReportData(calls, reviews, judgements, step_titles, dict(utterances))
