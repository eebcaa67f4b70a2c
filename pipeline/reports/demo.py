"""Demo reviews, so that a fresh demo (``scripts/demo.sh``) shows numbers on
every owner page. They go through the same review functions as the review
page. Who reviews what:

- the owner reviews call 1 from the demo calls' reference labels
  (``data/demo/*.json``: every operator turn carries the script step it
  performs, or ``off_script``): a gold call, the answer key for listeners;
- ``demo-listener`` (the name marks its reviews as demo data) reviews call 1
  as a hidden gold call, calls 2, 3 and 5, from the labels too, and flags
  call 5 urgent;
- the demo login ``listener`` has reviewed call 3 as a hurried listener would:
  the pre-filled form accepted as it is (the aligner's answers), so the
  agreement and disagreement pages show what that costs. It keeps the other
  calls in its queue.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.review import accounts, assignments, review
from pipeline.storage.store import AlignmentRow, Assignment, Recording, Review, User
from pipeline.vocabulary import Mark, ReviewStatus, Role

DEMO_LISTENER = "demo-listener"
DEMO_RATE = 50.0  # per submitted call, so the pay column has numbers
OFF_SCRIPT = "off_script"
URGENT_REASON = "Клиенту дорого, заказа нет: перезвонить с предложением подешевле"


@dataclass(frozen=True)
class Labels:
    """What a demo call's reference says the operator did."""

    file: str
    done: frozenset[str]
    off_script: tuple[tuple[float, float], ...]  # (start, end) of operator turns no step covers


@dataclass
class DemoResult:
    submitted: list[str] = field(default_factory=list)  # "user: file"
    skipped: list[str] = field(default_factory=list)  # files not processed (failed or missing), so not reviewed


def read_labels(folder: Path) -> list[Labels]:
    """The reference labels of the demo calls, in file-name order."""
    out = []
    for path in sorted(folder.glob("*.json")):
        call = json.loads(path.read_text(encoding="utf-8"))
        ops = [t for t in call["turns"] if t["speaker"] == "operator"]
        out.append(Labels(call["file"], frozenset(t["step"] for t in ops if t["step"] and t["step"] != OFF_SCRIPT),
                          tuple((t["start"], t["end"]) for t in ops if t["step"] == OFF_SCRIPT)))
    return out


# (user, call number, gold, urgent, from the labels): the plan in the module docstring.
PLAN = [("owner", 1, False, False, True), ("demo", 1, True, False, True), ("demo", 2, False, False, True),
        ("demo", 3, False, False, True), ("demo", 5, False, True, True), ("listener", 3, False, False, False)]


def seed_reviews(session: Session, folder: Path, listener: str = "listener") -> DemoResult:
    """Submit the demo reviews (``PLAN``) once; a rerun finds them and does nothing."""
    result = DemoResult()
    owner = session.scalar(select(User).where(User.role == Role.OWNER).order_by(User.id).limit(1))
    if owner is None:
        raise review.ReviewError("The demo reviews need an owner account: callreview users add owner --role owner.")
    demo = session.scalar(select(User).where(User.name == DEMO_LISTENER))
    if demo is None:  # nobody logs in as it: a random password
        demo = accounts.add_user(session, DEMO_LISTENER, Role.LISTENER, secrets.token_urlsafe(16), rate=DEMO_RATE)
    elif session.scalar(select(func.count(Assignment.id)).where(Assignment.listener_id == demo.id)):
        return result
    users = {"owner": owner, "demo": demo, "listener": accounts.get_user(session, listener)}
    labels = read_labels(folder)
    recordings = {r.original_name: r for r in session.scalars(select(Recording))}
    for who, number, gold, urgent, from_labels in PLAN:
        lab = labels[number - 1]
        rec = recordings.get(lab.file)
        alignment = rec and session.scalar(select(AlignmentRow).where(AlignmentRow.recording_id == rec.id)
                                           .order_by(AlignmentRow.id.desc()).limit(1))
        if alignment is None:
            result.skipped.append(lab.file)
            continue
        user = users[who]
        aid = _assignment(session, rec.id, user.id, gold)
        if session.scalar(select(Review.status).where(Review.assignment_id == aid)) == ReviewStatus.SUBMITTED:
            continue
        _review(session, user.id, aid, alignment, lab if from_labels else None, urgent)
        result.submitted.append(f"{user.name}: {lab.file}")
    return result


def _assignment(session: Session, recording_id: int, user_id: int, gold: bool) -> int:
    """The user's assignment of the call, put at the end of the queue when it is not there."""
    aid = session.scalar(select(Assignment.id).where(Assignment.recording_id == recording_id, Assignment.listener_id == user_id))
    if aid is None:
        last = session.scalar(select(func.max(Assignment.position)).where(Assignment.listener_id == user_id)) or 0
        assignments.add_assignment(session, recording_id, user_id, last + 1, gold)
        aid = session.scalar(select(Assignment.id).where(Assignment.recording_id == recording_id, Assignment.listener_id == user_id))
    return aid


def _review(session: Session, user_id: int, aid: int, alignment: AlignmentRow, lab: Labels | None, urgent: bool) -> None:
    """Mark every step as the labels say, confirm the aligner's off-script
    suggestions that match an off-script turn, add the turns it missed, submit.
    Without labels, accept the aligner's answers as the form pre-fills them."""
    record = alignment.record
    for step in record.steps:
        done = step.found if lab is None else step.id in lab.done
        review.save_mark(session, user_id, aid, step.id, Mark.CORRECT if done else Mark.INCORRECT)
    heard = set()
    for o in record.off_script:
        turn = next((t for t in lab.off_script if o.start < t[1] and o.end > t[0]), None) if lab else (o.start, o.end)
        if turn is not None:
            review.confirm_off_script(session, user_id, aid, o.utterance, True, start=o.start)
            heard.add(turn)
    for start, end in lab.off_script if lab else ():
        if (start, end) not in heard:
            review.add_moment(session, user_id, aid, (start + end) / 2, "")
    if urgent:
        review.set_urgent(session, user_id, aid, True, URGENT_REASON)
    review.submit_review(session, user_id, aid)
