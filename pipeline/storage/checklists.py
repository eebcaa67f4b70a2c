"""Script versions as stored: one row per distinct checklist content, and the
phrasings listeners confirmed for a version, which the next alignment learns from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pipeline.script.checklist import OFF_SCRIPT, Checklist
from pipeline.storage.store import AlignmentRow, ChecklistVersion, DroppedExample, Review
from pipeline.vocabulary import Mark, ReviewStatus


def store_checklist_version(session: Session, checklist: Checklist) -> ChecklistVersion:
    """Get or create the ``ChecklistVersion`` row for this exact content."""
    row = stored_version(session, checklist)
    if row is None:
        row = ChecklistVersion(
            checklist_id=checklist.id,
            version=checklist.version,
            sha256=checklist.sha256,
            title=checklist.title,
            content=checklist.canonical(),
        )
        session.add(row)
        session.flush()
    return row


@dataclass(frozen=True)
class LearnedExample:
    """One phrasing listeners confirmed for a script version."""

    key: str  # the step id, or OFF_SCRIPT
    text: str
    reviews: int  # how many submitted reviews confirmed it
    dropped: bool  # struck out by the owner: not learned from


def stored_version(session: Session, checklist: Checklist) -> ChecklistVersion | None:
    """The stored row for this exact content, if any call was aligned with it."""
    return session.scalar(
        select(ChecklistVersion).where(ChecklistVersion.checklist_id == checklist.id, ChecklistVersion.sha256 == checklist.sha256)
    )


def stored_versions(session: Session, checklist_id: str) -> list[ChecklistVersion]:
    """Every stored version of a script, the newest last."""
    return list(session.scalars(select(ChecklistVersion).where(ChecklistVersion.checklist_id == checklist_id).order_by(ChecklistVersion.id)))


@dataclass(frozen=True)
class VersionSummary:
    """One stored script version, for ``callreview checklists list``."""

    checklist_id: str
    version: int
    sha256: str
    title: str
    aligned: int  # calls aligned with it
    reviewed: int  # submitted reviews of those calls
    learned: int  # examples the next alignment learns from
    dropped: int  # examples the owner struck out


def version_summaries(session: Session) -> list[VersionSummary]:
    """Every stored script version, oldest first within each script."""
    aligned = dict(session.execute(select(AlignmentRow.checklist_version_id, func.count()).group_by(AlignmentRow.checklist_version_id)).all())
    reviewed = dict(
        session.execute(
            select(AlignmentRow.checklist_version_id, func.count(Review.id))
            .join(Review, Review.alignment_id == AlignmentRow.id)
            .where(Review.status == ReviewStatus.SUBMITTED)
            .group_by(AlignmentRow.checklist_version_id)
        ).all()
    )
    out = []
    for v in session.scalars(select(ChecklistVersion).order_by(ChecklistVersion.checklist_id, ChecklistVersion.id)):
        learned = learned_examples(session, v.id) if reviewed.get(v.id) else []
        dropped = sum(e.dropped for e in learned)
        out.append(VersionSummary(v.checklist_id, v.version, v.sha256, v.title, aligned.get(v.id, 0), reviewed.get(v.id, 0),
                                  len(learned) - dropped, dropped))
    return out


def latest_version(session: Session, checklist_id: str) -> ChecklistVersion | None:
    """The script version stored last under ``checklist_id``."""
    return next(reversed(stored_versions(session, checklist_id)), None)


def learned_examples(session: Session, checklist_version_id: int) -> list[LearnedExample]:
    """Every phrasing confirmed in a submitted review of this script version,
    dropped ones included, in the order they were first confirmed.

    A step marked ``correct`` adds the sentence the alignment quoted for it
    (whole utterances may mix steps); a "not in script" moment adds its text
    (or its utterance's) under ``OFF_SCRIPT``. A text confirmed both ways
    teaches nothing and is left out."""
    counts: dict[tuple[str, str], int] = {}
    rows = session.execute(  # read once per batch of calls: one query, marks and moments loaded with it
        select(Review, AlignmentRow)
        .join(AlignmentRow, Review.alignment_id == AlignmentRow.id)
        .where(AlignmentRow.checklist_version_id == checklist_version_id, Review.status == ReviewStatus.SUBMITTED)
        .options(selectinload(Review.marks), selectinload(Review.moments))
        .order_by(Review.id)
    ).all()
    parsed: dict[int, tuple] = {}  # an alignment reviewed by several listeners is read once
    for review, row in rows:
        if row.id not in parsed:
            record = row.record
            parsed[row.id] = (record, record.texts())
        record, texts = parsed[row.id]
        confirmed = set()
        for mark in review.marks:
            step = record.step(mark.step_id)
            if mark.mark == Mark.CORRECT and step and step.found:
                confirmed.add((mark.step_id, step.quote or " ".join(texts.get(i, "") for i in step.utterances)))
        for moment in review.moments:
            confirmed.add((OFF_SCRIPT, moment.text or texts.get(moment.utterance_idx, "")))
        for key, text in sorted(confirmed):
            text = (text or "").strip()
            if text:
                counts[key, text] = counts.get((key, text), 0) + 1
    off = {text for key, text in counts if key == OFF_SCRIPT}
    both = {text for key, text in counts if key != OFF_SCRIPT} & off
    dropped = set(
        session.execute(
            select(DroppedExample.step_id, DroppedExample.text).where(DroppedExample.checklist_version_id == checklist_version_id)
        ).all()
    )
    return [LearnedExample(key, text, n, (key, text) in dropped) for (key, text), n in counts.items() if text not in both]


def learning_stamp(session: Session, checklist_version_id: int) -> tuple:
    """Changes whenever what ``learned_examples`` would return may change (a
    review submitted, an example dropped or restored): a worker keeps the
    examples while it stays the same, instead of reading every review again."""
    reviews = session.execute(
        select(func.count(Review.id), func.max(Review.id), func.sum(Review.id))
        .join(AlignmentRow, Review.alignment_id == AlignmentRow.id)
        .where(AlignmentRow.checklist_version_id == checklist_version_id, Review.status == ReviewStatus.SUBMITTED)
    ).one()
    drops = session.execute(
        select(func.count(DroppedExample.id), func.max(DroppedExample.id), func.sum(DroppedExample.id))
        .where(DroppedExample.checklist_version_id == checklist_version_id)
    ).one()
    return (checklist_version_id, *reviews, *drops)


def reviewed_examples(session: Session, checklist_version_id: int) -> dict[str, list[str]]:
    """What the next alignment with this version learns: ``align(extra_examples=...)``."""
    out: dict[str, list[str]] = {}
    for example in learned_examples(session, checklist_version_id):
        if not example.dropped:
            out.setdefault(example.key, []).append(example.text)
    return out


def set_dropped(session: Session, checklist_version_id: int, example: LearnedExample, dropped: bool = True) -> None:
    """Strike a learned example out of this version's learning, or take it back in."""
    rows = session.scalars(
        select(DroppedExample).where(
            DroppedExample.checklist_version_id == checklist_version_id,
            DroppedExample.step_id == example.key,
            DroppedExample.text == example.text,
        )
    ).all()
    if dropped and not rows:
        session.add(DroppedExample(checklist_version_id=checklist_version_id, step_id=example.key, text=example.text))
    elif not dropped:
        for row in rows:
            session.delete(row)
    session.flush()
