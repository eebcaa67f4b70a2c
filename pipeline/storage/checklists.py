"""Script versions as stored: one row per distinct checklist content, and the
phrasings listeners confirmed for a version, which the next alignment learns from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.script.checklist import OFF_SCRIPT, Checklist
from pipeline.storage.store import AlignmentRow, ChecklistVersion, Review
from pipeline.vocabulary import Mark, ReviewStatus


def store_checklist_version(session: Session, checklist: Checklist) -> ChecklistVersion:
    """Get or create the ``ChecklistVersion`` row for this exact content."""
    sha = checklist.sha256
    row = session.scalar(
        select(ChecklistVersion).where(ChecklistVersion.checklist_id == checklist.id, ChecklistVersion.sha256 == sha)
    )
    if row is None:
        row = ChecklistVersion(
            checklist_id=checklist.id,
            version=checklist.version,
            sha256=sha,
            title=checklist.title,
            content=checklist.canonical(),
        )
        session.add(row)
        session.flush()
    return row


def reviewed_examples(session: Session, checklist_version_id: int) -> dict[str, list[str]]:
    """Listener-confirmed phrasings for one script version, for ``align(extra_examples=...)``.

    A step marked ``correct`` in a submitted review adds the text of the
    utterances the alignment attached to that step; off-script moments add
    their text (or their utterance's) under ``OFF_SCRIPT``."""
    out: dict[str, list[str]] = {}

    def add(key: str, text: str) -> None:
        text = (text or "").strip()
        if text and text not in out.setdefault(key, []):
            out[key].append(text)

    reviews = session.scalars(
        select(Review)
        .join(AlignmentRow, Review.alignment_id == AlignmentRow.id)
        .where(AlignmentRow.checklist_version_id == checklist_version_id, Review.status == ReviewStatus.SUBMITTED)
        .order_by(Review.id)
    ).all()
    for review in reviews:
        record = session.get(AlignmentRow, review.alignment_id).record
        texts = record.texts()
        for mark in review.marks:
            step = record.step(mark.step_id)
            if mark.mark == Mark.CORRECT and step and step.found:
                # the quote is the sentence that matched; whole utterances may mix steps
                add(mark.step_id, step.quote or " ".join(texts.get(i, "") for i in step.utterances))
        for moment in review.moments:
            add(OFF_SCRIPT, moment.text or texts.get(moment.utterance_idx, ""))
    # drop texts that listeners confirmed both as a step and as off-script
    off = set(out.get(OFF_SCRIPT, []))
    for key in [k for k in out if k != OFF_SCRIPT]:
        clash = off.intersection(out[key])
        out[key] = [t for t in out[key] if t not in clash]
        if OFF_SCRIPT in out:
            out[OFF_SCRIPT] = [t for t in out[OFF_SCRIPT] if t not in clash]
    return {k: v for k, v in out.items() if v}
