"""Blind review: listener queues, drafts, marks, submit-and-lock, assignment and
progress. The review app, the CLI and the tests all call these functions.

Read functions take a ``Session``. Write functions take one too; open it with
``write_session(url)`` so that on SQLite the write lock is taken up front
(``BEGIN IMMEDIATE``) and concurrent writers queue on the busy timeout instead
of failing with "database is locked" when their read snapshot goes stale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pipeline.errors import CallreviewError
from pipeline.review import audit
from pipeline.review.masking import Masker
from pipeline.storage.ingest import unheard_spots
from pipeline.storage.store import (
    AlignmentRow,
    Assignment,
    ChecklistVersion,
    OffScriptMoment,
    Recording,
    Review,
    StepMark,
    UtteranceRow,
    session_scope,
    utcnow,
)
from pipeline.vocabulary import AssignmentStatus, AuditAction, Mark, ReviewStatus, StepStatus


class ReviewError(CallreviewError):
    """A review action cannot be done; the message says why."""


class NotYourCall(ReviewError):
    """The call is not in this listener's queue."""


class ReviewLocked(ReviewError):
    """The review was submitted and can no longer change."""


class StaleReview(ReviewError):
    """The review changed since this page read it (another tab of the same
    account): the write is refused so neither tab overwrites the other unseen."""


class IncompleteReview(ReviewError):
    """Submit was refused: some steps have no mark."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__("Not every step is marked: " + ", ".join(missing))


def write_session(url: str):
    """A write transaction (SQLite's lock taken up front): see ``store.session_scope``."""
    return session_scope(url, write=True)


def dialect_insert(session: Session):
    """The dialect's insert(), whose on_conflict_do_nothing SQLite and PostgreSQL both have."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# --- what a listener sees ----------------------------------------------------


@dataclass
class QueueItem:
    """One call in a listener's queue. Deliberately no recording id, file or operator."""

    assignment_id: int
    number: int  # 1-based position in due order, what the listener calls "звонок №"
    status: str
    duration: float | None
    assigned_at: dt.datetime
    submitted_at: dt.datetime | None = None
    marked: int = 0
    steps: int = 0


def listener_queue(session: Session, listener_id: int) -> list[QueueItem]:
    """The listener's assigned calls in due order: unfinished first, then submitted."""
    rows = session.execute(
        select(Assignment, Recording.duration, Review)
        .join(Recording, Recording.id == Assignment.recording_id)
        .outerjoin(Review, Review.assignment_id == Assignment.id)
        .where(Assignment.listener_id == listener_id)
        .order_by(Assignment.position, Assignment.id)
    ).all()
    marked = dict(
        session.execute(
            select(StepMark.review_id, func.count())
            .join(Review, Review.id == StepMark.review_id)
            .join(Assignment, Assignment.id == Review.assignment_id)
            .where(Assignment.listener_id == listener_id, StepMark.mark.is_not(None))
            .group_by(StepMark.review_id)
        ).all()
    )
    items = []
    for number, (a, duration, review) in enumerate(rows, start=1):
        items.append(
            QueueItem(
                assignment_id=a.id,
                number=number,
                status=a.status,
                duration=duration,
                assigned_at=a.assigned_at,
                submitted_at=review.submitted_at if review else None,
                marked=marked.get(review.id, 0) if review else 0,
            )
        )
    order = {AssignmentStatus.IN_PROGRESS: 0, AssignmentStatus.NEW: 1, AssignmentStatus.SUBMITTED: 2}
    return sorted(items, key=lambda i: (order.get(i.status, 3), i.number))


# A step found with less confidence than this is put to the listener as a
# question, with no one-click confirm: with the fitted confidence (issue 19,
# docs/benchmarks.md "Calibration") such a suggestion is wrong 3 times in 10 or more.
DOUBTFUL = 0.7


@dataclass
class Suggestion:
    status: str  # the aligner's word: found, missing, ...
    start: float | None
    end: float | None
    quote: str
    confidence: float | None

    @property
    def found(self) -> bool:
        return self.start is not None and self.status != StepStatus.MISSING

    @property
    def doubtful(self) -> bool:
        return self.found and self.confidence is not None and self.confidence < DOUBTFUL


@dataclass
class StepView:
    id: str
    title: str
    description: str
    examples: list[str]
    required: bool
    suggestion: Suggestion | None
    mark: str | None = None
    comment: str = ""


@dataclass
class UtteranceView:
    idx: int
    speaker: str  # operator | client | unknown
    start: float
    end: float
    text: str  # masked


@dataclass
class MomentView:
    id: int
    utterance_idx: int | None
    time: float
    text: str  # masked
    description: str


@dataclass
class OffScriptSuggestion:
    utterance_idx: int | None
    start: float
    end: float
    text: str  # masked: the sentences judged off-script, not their whole utterance
    confirmed_id: int | None = None  # the OffScriptMoment confirming it, if any
    description: str = ""
    confidence: float | None = None  # that the sentences match no step (fitted: docs/benchmarks.md)

    @property
    def doubtful(self) -> bool:
        return self.confidence is not None and self.confidence < DOUBTFUL


@dataclass
class CallView:
    """Everything the call page shows, already masked for blind review."""

    assignment_id: int
    review_id: int
    number: int
    status: str  # draft | submitted
    duration: float | None
    has_audio: bool
    utterances: list[UtteranceView]
    steps: list[StepView]
    off_script: list[OffScriptSuggestion]
    moments: list[MomentView]  # listener-added moments (not tied to a suggestion)
    urgent: bool = False
    urgent_reason: str = ""
    checklist_title: str = ""
    unheard: list[tuple[float, float, str]] = field(default_factory=list)  # speech that got no words (start, end, why): listen there
    version: int = 0  # the review's version this view shows; a write from an older one is refused

    @property
    def locked(self) -> bool:
        return self.status == ReviewStatus.SUBMITTED

    @property
    def unmarked(self) -> list[StepView]:
        return [s for s in self.steps if s.mark is None]


def _assignment_for(session: Session, listener_id: int, assignment_id: int) -> Assignment:
    a = session.get(Assignment, assignment_id)
    if a is None or a.listener_id != listener_id:
        raise NotYourCall(f"Call {assignment_id} is not in your queue.")
    return a


def _latest_alignment(session: Session, recording_id: int) -> AlignmentRow | None:
    return session.scalar(
        select(AlignmentRow).where(AlignmentRow.recording_id == recording_id).order_by(AlignmentRow.id.desc()).limit(1)
    )


def ensure_review(session: Session, listener_id: int, assignment_id: int) -> Review:
    """The assignment's review, creating the draft if needed (safe against a double click)."""
    a = _assignment_for(session, listener_id, assignment_id)
    review = session.scalar(select(Review).where(Review.assignment_id == a.id))
    if review is not None:
        return review
    alignment = _latest_alignment(session, a.recording_id)
    now = utcnow()
    insert = dialect_insert(session)
    session.execute(
        insert(Review)
        .values(assignment_id=a.id, alignment_id=alignment.id if alignment else None, status=ReviewStatus.DRAFT,
                urgent=False, started_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["assignment_id"])
    )
    if a.status == AssignmentStatus.NEW:
        a.status = AssignmentStatus.IN_PROGRESS
    session.flush()
    return session.scalar(select(Review).where(Review.assignment_id == a.id))


def _script_masker(session: Session, checklist: dict[str, Any]) -> Masker:
    """One mask for the script's own text in every call: the names it introduces
    ("меня зовут Анна") and every operator's name. Masked with the call's own
    operator only, an example would read "[имя]" in that operator's calls and
    the name in everyone else's, telling the listener whose call it is."""
    texts = [t for s in checklist.get("steps", []) for t in [s.get("description", ""), *s.get("examples", [])]]
    operators = session.scalars(select(Recording.operator).where(Recording.operator.is_not(None)).distinct())
    return Masker(texts, " ".join(operators))


def open_call(session: Session, listener_id: int, assignment_id: int) -> CallView:
    """The masked call page for one of the listener's calls (draft created on
    first open); each open goes to the audit log."""
    view = call_view(session, listener_id, assignment_id)
    audit.record(session, AuditAction.OPEN, user_id=listener_id, assignment_id=assignment_id)
    return view


def call_view(session: Session, listener_id: int, assignment_id: int) -> CallView:
    """``open_call`` without the audit entry: the page refreshed after the listener's own change."""
    a = _assignment_for(session, listener_id, assignment_id)
    review = ensure_review(session, listener_id, assignment_id)
    rec = session.get(Recording, a.recording_id)
    alignment = session.get(AlignmentRow, review.alignment_id) if review.alignment_id else None
    checklist: dict[str, Any] = {}
    if alignment is not None:
        checklist = session.get(ChecklistVersion, alignment.checklist_version_id).content
    record = alignment.record if alignment else None

    utt_rows = list(session.scalars(select(UtteranceRow).where(UtteranceRow.recording_id == rec.id).order_by(UtteranceRow.idx)))
    mask = Masker([u.text for u in utt_rows if u.speaker == "operator"], rec.operator)
    utterances = [UtteranceView(u.idx, u.speaker, u.start, u.end, mask(u.text)) for u in utt_rows]
    by_idx = {u.idx: u for u in utterances}

    script_mask = _script_masker(session, checklist)
    suggestions = {s.id: s for s in record.steps} if record else {}
    marks = {m.step_id: m for m in session.scalars(select(StepMark).where(StepMark.review_id == review.id))}
    steps = []
    for step in checklist.get("steps", []):
        sug = suggestions.get(step["id"])
        suggestion = None
        if sug is not None:
            if sug.sentence:
                quote, start, end = sug.sentence
                quote = mask(quote)
            else:
                quote, start, end = " ".join(by_idx[i].text for i in sug.utterances if i in by_idx), sug.start, sug.end
            suggestion = Suggestion(status=sug.status, start=start, end=end, quote=quote, confidence=sug.confidence)
        mark = marks.get(step["id"])
        steps.append(
            StepView(
                id=step["id"],
                title=step.get("title", step["id"]),
                description=script_mask(step.get("description", "")),
                examples=[script_mask(e) for e in step.get("examples", [])],
                required=bool(step.get("required", True)),
                suggestion=suggestion,
                mark=mark.mark if mark else None,
                comment=mark.comment if mark else "",
            )
        )

    moments = list(session.scalars(select(OffScriptMoment).where(OffScriptMoment.review_id == review.id).order_by(OffScriptMoment.time)))
    off_script = []
    for item in record.off_script if record else []:
        m = next((m for m in moments if m.utterance_idx == item.utterance and _same_time(m.time, item.start)), None)
        off_script.append(
            OffScriptSuggestion(item.utterance, item.start, item.end, mask(item.text), m.id if m else None,
                                m.description if m else "", item.confidence)
        )
    suggested = {o.confirmed_id for o in off_script}
    added = [MomentView(m.id, m.utterance_idx, m.time, mask(m.text), m.description) for m in moments if m.id not in suggested]
    number = session.scalar(
        select(func.count()).select_from(Assignment).where(
            Assignment.listener_id == listener_id,
            (Assignment.position < a.position) | ((Assignment.position == a.position) & (Assignment.id <= a.id)),
        )
    )
    return CallView(
        assignment_id=a.id,
        review_id=review.id,
        number=number or 1,
        status=review.status,
        duration=rec.duration,
        has_audio=bool(rec.listen_path),
        utterances=utterances,
        steps=steps,
        off_script=off_script,
        moments=added,
        urgent=review.urgent,
        urgent_reason=review.urgent_reason or "",
        checklist_title=checklist.get("title", ""),
        unheard=unheard_spots(rec.coverage),
        version=review.version,
    )


def _locked_review(session: Session, listener_id: int, assignment_id: int) -> Review:
    """The review row, locked for this transaction: on PostgreSQL so a mark cannot
    slip in after a concurrent submit; SQLite already holds the database write
    lock (write_session)."""
    review = ensure_review(session, listener_id, assignment_id)
    return session.scalar(select(Review).where(Review.id == review.id).with_for_update().execution_options(populate_existing=True))


def _check_version(review: Review, version: int | None) -> None:
    """``StaleReview`` if the caller's view read an older version (None: no check)."""
    if version is not None and review.version != version:
        raise StaleReview(f"Review {review.id} is at version {review.version}; this view read version {version}.")


def _draft_for_update(session: Session, listener_id: int, assignment_id: int, version: int | None) -> Review:
    """The draft about to change, its version moved on; ``ReviewLocked`` once
    submitted, ``StaleReview`` if the caller saw an older version."""
    review = _locked_review(session, listener_id, assignment_id)
    if review.status == ReviewStatus.SUBMITTED:
        raise ReviewLocked("This review was submitted and can no longer be changed.")
    _check_version(review, version)
    review.version += 1
    return review


def save_mark(session: Session, listener_id: int, assignment_id: int, step_id: str,
              mark: str | None, comment: str | None = None, version: int | None = None) -> None:
    """Set (or clear, with ``mark=None``) a step's mark; ``comment=None`` keeps the comment."""
    if mark is not None and mark not in tuple(Mark):
        raise ReviewError(f"Unknown mark {mark!r}: use one of {', '.join(Mark)}.")
    review = _draft_for_update(session, listener_id, assignment_id, version)
    insert = dialect_insert(session)
    values: dict[str, Any] = {"review_id": review.id, "step_id": step_id, "mark": mark, "comment": comment or ""}
    update_set: dict[str, Any] = {"mark": mark}
    if comment is not None:
        update_set["comment"] = comment
    session.execute(insert(StepMark).values(**values).on_conflict_do_update(index_elements=["review_id", "step_id"], set_=update_set))
    review.updated_at = utcnow()
    audit.record(session, AuditAction.MARK, user_id=listener_id, assignment_id=assignment_id, detail=f"{step_id}: {mark or '-'}")


def save_comment(session: Session, listener_id: int, assignment_id: int, step_id: str, comment: str,
                 version: int | None = None) -> None:
    """Set a step's comment without touching its mark."""
    review = _draft_for_update(session, listener_id, assignment_id, version)
    insert = dialect_insert(session)
    session.execute(
        insert(StepMark).values(review_id=review.id, step_id=step_id, mark=None, comment=comment)
        .on_conflict_do_update(index_elements=["review_id", "step_id"], set_={"comment": comment})
    )
    review.updated_at = utcnow()


def confirm_off_script(session: Session, listener_id: int, assignment_id: int, utterance_idx: int,
                       confirmed: bool, description: str = "", start: float | None = None, version: int | None = None) -> None:
    """Confirm (or withdraw) that a suggested off-script moment is a situation the
    script does not cover. ``start`` tells the moment among several in one
    utterance (the first when not given)."""
    review = _draft_for_update(session, listener_id, assignment_id, version)
    alignment = session.get(AlignmentRow, review.alignment_id) if review.alignment_id else None
    items = [o for o in alignment.record.off_script if o.utterance == utterance_idx] if alignment else []
    item = next((o for o in items if start is None or _same_time(o.start, start)), None)
    # the sentences the aligner judged off-script, not their whole utterance: the
    # next alignment learns from this text (pipeline.storage.checklists)
    if item is None:
        a = session.get(Assignment, assignment_id)
        utt = session.scalar(select(UtteranceRow).where(UtteranceRow.recording_id == a.recording_id, UtteranceRow.idx == utterance_idx))
        time, text = (utt.start, utt.text) if utt else (0.0, "")
    else:
        time, text = item.start, item.text
    moments = session.scalars(select(OffScriptMoment).where(OffScriptMoment.review_id == review.id,
                                                            OffScriptMoment.utterance_idx == utterance_idx))
    existing = next((m for m in moments if _same_time(m.time, time)), None)
    if not confirmed:
        if existing is not None:
            session.delete(existing)
    elif existing is not None:
        existing.description = description
    else:
        session.add(OffScriptMoment(review_id=review.id, utterance_idx=utterance_idx, time=time, text=text, description=description))


def _same_time(a: float, b: float) -> bool:
    return abs(a - b) < 0.01  # stored records keep times to 0.01 s


def add_moment(session: Session, listener_id: int, assignment_id: int, time: float, description: str,
               version: int | None = None) -> int:
    """A listener-found situation the script does not cover, at ``time`` seconds; returns its id."""
    review = _draft_for_update(session, listener_id, assignment_id, version)
    a = session.get(Assignment, assignment_id)
    # Attach the utterance playing at that time, so reports can quote it.
    utt = session.scalar(
        select(UtteranceRow).where(UtteranceRow.recording_id == a.recording_id, UtteranceRow.start <= time)
        .order_by(UtteranceRow.start.desc()).limit(1)
    )
    moment = OffScriptMoment(review_id=review.id, utterance_idx=None, time=max(0.0, float(time)),
                             text=utt.text if utt is not None and utt.end >= time - 5 else "", description=description)
    session.add(moment)
    session.flush()
    return moment.id


def remove_moment(session: Session, listener_id: int, assignment_id: int, moment_id: int, version: int | None = None) -> None:
    review = _draft_for_update(session, listener_id, assignment_id, version)
    moment = session.get(OffScriptMoment, moment_id)
    if moment is not None and moment.review_id == review.id:
        session.delete(moment)


def set_urgent(session: Session, listener_id: int, assignment_id: int, urgent: bool, reason: str = "",
               version: int | None = None) -> None:
    """Flag "urgent: save this deal"; the owner sees it at once, before the review is submitted."""
    review = _draft_for_update(session, listener_id, assignment_id, version)
    if urgent and not review.urgent:
        review.urgent_at = utcnow()
        review.urgent_handled_at = None
    review.urgent = urgent
    review.urgent_reason = reason if urgent else None
    if not urgent:
        review.urgent_at = None


def submit_review(session: Session, listener_id: int, assignment_id: int, version: int | None = None) -> Review:
    """Validate that every step is marked, then lock the review.

    With ``version`` a page that did not see the latest change (another tab)
    gets ``StaleReview`` instead of submitting values it never showed. Without
    it, idempotent: a second submit returns the same review.
    """
    a = _assignment_for(session, listener_id, assignment_id)
    review = _locked_review(session, listener_id, assignment_id)
    _check_version(review, version)
    if review.status == ReviewStatus.SUBMITTED:
        return review
    view = call_view(session, listener_id, assignment_id)
    missing = [s.title for s in view.unmarked]
    if missing:
        raise IncompleteReview(missing)
    now = utcnow()
    done = session.execute(
        update(Review).where(Review.id == review.id, Review.status == ReviewStatus.DRAFT)
        .values(status=ReviewStatus.SUBMITTED, submitted_at=now, updated_at=now, version=Review.version + 1)
    ).rowcount
    if done:
        a.status = AssignmentStatus.SUBMITTED
        audit.record(session, AuditAction.SUBMIT, user_id=listener_id, assignment_id=assignment_id)
    session.flush()
    session.refresh(review)
    return review


def listen_path_for(session: Session, assignment_id: int, listener_id: int) -> str | None:
    """The listening copy behind one of this listener's assignments (used by the
    signed audio route), else None."""
    return session.scalar(
        select(Recording.listen_path).join(Assignment, Assignment.recording_id == Recording.id)
        .where(Assignment.id == assignment_id, Assignment.listener_id == listener_id)
    )
