"""Script improvement: every "not in script" item listeners recorded (step
marks and off-script moments), and the sentences the aligner found off-script
in calls nobody has reviewed yet, grouped by similarity into situations. A
situation with no listener's item is "not yet confirmed": the machine's
off-script precision is about 0.6 (docs/benchmarks.md), so it is a lead to
listen to, not a finding.

Similarity reuses the alignment's sentence models (``embed.get_scorer()``,
USE/e5 as configured) plus character TF-IDF; each model's cosines are turned
into scores against the same background of ordinary shop talk the aligner
uses, so 0 means "as alike as two unrelated phrases" and the models can be
averaged. Without those models, TF-IDF alone is the fallback.

The owner marks a group "covered in script vN" (``mark_covered``); groups are
recomputed every time, so the marker keeps the items it was set on and any
later group holding one of them inherits it. The report then counts how often
the situation still occurs in calls aligned with vN or later.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import CallreviewError
from pipeline.reports.data import call_time
from pipeline.script.embed import BACKGROUND_RU, as_dense, get_scorer, tfidf_encoder
from pipeline.storage.store import (
    AlignmentRow,
    Assignment,
    ChecklistVersion,
    OffScriptMoment,
    Recording,
    Review,
    SituationMarker,
    StepMark,
    User,
    UtteranceRow,
)
from pipeline.vocabulary import Mark, ReviewStatus

log = logging.getLogger(__name__)

# Average-linkage cut on the averaged background-standardised similarity.
# Measured on 12 hand-written Russian paraphrases of 4 situations: use+tfidf
# and e5+tfidf group them exactly for cuts 2.0-2.5 (e5+tfidf up to 3.0).
DEFAULT_THRESHOLD = 2.5
CLIP_PAD_S = 2.0  # seconds of audio either side of a quote
MOMENT_CLIP_S = 10.0  # a listener-added moment has a time, not an end


class SituationError(CallreviewError):
    """A situation marker cannot be set."""


@dataclass(frozen=True)
class Item:
    """One "not in script" item: a step mark or an off-script moment."""

    key: str  # "mark:<id>" or "moment:<id>", what markers remember
    recording_id: int
    reviewer: str
    text: str  # what is grouped: the listener's words, else the quote
    quote: str  # what was said in the call
    step_id: str | None  # the step it happened at (marks) or near (moments)
    start: float | None
    end: float | None
    seen_at: dt.datetime | None
    checklist_id: str | None
    version: int | None
    listen_path: str | None = None
    by_machine: bool = False  # the aligner's off-script sentence in a call no listener has reviewed


# --- similarity ------------------------------------------------------------------

Encoder = Callable[[list[str]], np.ndarray]


def default_encoders() -> dict[str, Encoder]:
    """The alignment's cached sentence models, when they load; else none (TF-IDF only)."""
    try:
        scorer = get_scorer()
    except Exception as exc:  # a missing optional model must not break the owner's report
        log.warning("sentence models unavailable, grouping situations with TF-IDF only: %s", exc)
        return {}
    embedders = getattr(scorer, "_embedders", {}) or {}
    return {name: emb.encode for name, emb in embedders.items()}


def similarity(texts: Sequence[str], encoders: dict[str, Encoder] | None = None) -> np.ndarray:
    """Pairwise similarity of texts: per model, cosine standardised against the
    cosines of these texts with background shop talk, then averaged over models."""
    texts = list(texts)
    encoders = dict(default_encoders() if encoders is None else encoders)
    encoders["tfidf"] = tfidf_encoder(texts)
    total = np.zeros((len(texts), len(texts)))
    for name, encode in encoders.items():
        a = encode(texts)
        bg = as_dense(a @ encode(BACKGROUND_RU).T)
        sims = as_dense(a @ a.T)
        total += (sims - bg.mean()) / (bg.std() or 1.0)
    return total / len(encoders)




def group_texts(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD,
                encoders: dict[str, Encoder] | None = None) -> list[int]:
    """Group labels (0, 1, ...; biggest group first) by average-linkage clustering."""
    n = len(texts)
    if n == 0:
        return []
    if n == 1:
        return [0]
    return _cut(similarity(texts, encoders), threshold)


def _cut(sim: np.ndarray, threshold: float) -> list[int]:
    from sklearn.cluster import AgglomerativeClustering

    if len(sim) < 2:
        return [0] * len(sim)
    # Shift so that "similarity >= threshold" becomes "distance <= 1".
    dist = np.maximum(threshold + 1.0 - sim, 0.0)
    np.fill_diagonal(dist, 0.0)
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=1.0, metric="precomputed",
                                     linkage="average").fit_predict(dist)
    sizes = Counter(labels)
    order = {lab: i for i, lab in enumerate(sorted(sizes, key=lambda lab: (-sizes[lab], min(np.where(labels == lab)[0]))))}
    return [order[lab] for lab in labels]


# --- situations -----------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    marker_id: int
    checklist_id: str
    version: int
    label: str


@dataclass
class Situation:
    number: int
    items: list[Item]
    label: str  # the most typical item's text
    coverage: Coverage | None = None
    since_covered: int = 0  # items in calls aligned with the covering version or later
    calls_since_covered: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def confirmed(self) -> int:
        """Items a listener recorded; the rest are the machine's."""
        return sum(not i.by_machine for i in self.items)

    @property
    def calls(self) -> int:
        return len({i.recording_id for i in self.items})

    @property
    def step_id(self) -> str | None:
        steps = Counter(i.step_id for i in self.items if i.step_id)
        return steps.most_common(1)[0][0] if steps else None

    @property
    def first_seen(self) -> dt.datetime | None:
        return min((i.seen_at for i in self.items if i.seen_at), default=None)

    @property
    def last_seen(self) -> dt.datetime | None:
        return max((i.seen_at for i in self.items if i.seen_at), default=None)

    @property
    def status(self) -> str:
        if self.coverage is None:
            return "open" if self.confirmed else "not yet confirmed"
        if self.since_covered:
            return f"still occurs after v{self.coverage.version}"
        return f"not seen since v{self.coverage.version}"

    @property
    def keys(self) -> list[str]:
        return [i.key for i in self.items]


def build_situations(items: Sequence[Item], markers: Sequence[SituationMarker] = (),
                     threshold: float = DEFAULT_THRESHOLD, encoders: dict[str, Encoder] | None = None) -> list[Situation]:
    """Group items into situations, attach the owner's coverage markers and count recurrences."""
    items = list(items)
    texts = [i.text or i.quote or "" for i in items]
    if not items:
        return []
    sim = similarity(texts, encoders)
    labels = _cut(sim, threshold)
    groups: dict[int, list[int]] = {}
    for idx, lab in enumerate(labels):
        groups.setdefault(lab, []).append(idx)
    out = []
    for lab in sorted(groups):
        idxs = groups[lab]
        central = max(idxs, key=lambda i: sim[i, idxs].mean())
        members = [items[i] for i in idxs]
        nearest = sorted(idxs, key=lambda i: -sim[central, i])
        quotes = list(dict.fromkeys(items[i].quote for i in nearest if items[i].quote))
        sit = Situation(number=lab + 1, items=members, label=texts[central], examples=quotes[:3])
        keys = set(sit.keys)
        # The newest marker that touches this group wins (a re-mark with a later version).
        for marker in sorted(markers, key=lambda m: (m.created_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc), m.id)):
            if keys & set(marker.item_keys or []):
                sit.coverage = Coverage(marker.id, marker.checklist_id, marker.version, marker.label)
        if sit.coverage is not None:
            later = [m for m in members if m.checklist_id == sit.coverage.checklist_id and (m.version or 0) >= sit.coverage.version]
            sit.since_covered = len(later)
            sit.calls_since_covered = len({m.recording_id for m in later})
        out.append(sit)
    return out


# --- database edge -----------------------------------------------------------------


def load_items(session: Session) -> list[Item]:
    """Every not-in-script step mark and off-script moment of submitted reviews."""

    versions = {v.id: v for v in session.scalars(select(ChecklistVersion))}
    rows = session.execute(
        select(Review, Assignment, User, Recording)
        .join(Assignment, Assignment.id == Review.assignment_id)
        .join(User, User.id == Assignment.listener_id)
        .join(Recording, Recording.id == Assignment.recording_id)
        .where(Review.status == ReviewStatus.SUBMITTED)
    ).all()
    reviews = {r.id: (r, a, u, rec) for r, a, u, rec in rows}
    if not reviews:
        return []
    alignments = {a.id: a for a in session.scalars(select(AlignmentRow).where(
        AlignmentRow.id.in_([r.alignment_id for r, *_ in rows if r.alignment_id])))}
    texts: dict[tuple[int, int], str] = {
        (u.recording_id, u.idx): u.text
        for u in session.scalars(select(UtteranceRow).where(UtteranceRow.recording_id.in_({rec.id for *_, rec in rows})))
    }

    def context(review: Review):
        row = alignments.get(review.alignment_id) if review.alignment_id else None
        if row is None:
            return None, None, {}
        v = versions.get(row.checklist_version_id)
        return (v.checklist_id if v else None), (v.version if v else None), {s.id: s for s in row.record.steps}

    items = []
    marks = session.scalars(select(StepMark).where(StepMark.review_id.in_(reviews), StepMark.mark == Mark.NOT_IN_SCRIPT)
                            .order_by(StepMark.id))
    for m in marks:
        review, a, user, rec = reviews[m.review_id]
        cl, ver, steps = context(review)
        step = steps.get(m.step_id)
        if step is not None and step.sentence:
            quote, start, end = step.sentence
        else:
            quote = " ".join(texts.get((rec.id, i), "") for i in step.utterances).strip() if step else ""
            start, end = (step.start, step.end) if step else (None, None)
        items.append(Item(f"mark:{m.id}", rec.id, user.name, (m.comment or "").strip() or quote, quote, m.step_id,
                          max(0.0, start - CLIP_PAD_S) if start is not None else None,
                          end + CLIP_PAD_S if end is not None else None, call_time(rec), cl, ver, rec.listen_path))
    for mo in session.scalars(select(OffScriptMoment).where(OffScriptMoment.review_id.in_(reviews)).order_by(OffScriptMoment.id)):
        review, a, user, rec = reviews[mo.review_id]
        cl, ver, steps = context(review)
        near = [s for s in steps.values() if s.start is not None and s.start <= mo.time]
        step_id = max(near, key=lambda s: s.start).id if near else None
        quote = (mo.text or "").strip()
        items.append(Item(f"moment:{mo.id}", rec.id, user.name, (mo.description or "").strip() or quote, quote, step_id,
                          max(0.0, mo.time - CLIP_PAD_S), mo.time + MOMENT_CLIP_S, call_time(rec), cl, ver,
                          rec.listen_path))
    return items


def load_machine_items(session: Session) -> list[Item]:
    """The aligner's off-script sentences (newest alignment of each call) in
    calls without a submitted review: a listener who reviewed a call and did
    not confirm a suggestion has said it is not one."""
    versions = {v.id: v for v in session.scalars(select(ChecklistVersion))}
    reviewed = set(session.scalars(select(Assignment.recording_id).join(Review, Review.assignment_id == Assignment.id)
                                   .where(Review.status == ReviewStatus.SUBMITTED)))
    latest: dict[int, AlignmentRow] = {}
    for row in session.scalars(select(AlignmentRow).where(AlignmentRow.recording_id.not_in(reviewed)).order_by(AlignmentRow.id)):
        latest[row.recording_id] = row
    items = []
    for rec in session.scalars(select(Recording).where(Recording.id.in_(latest)).order_by(Recording.id)):
        row = latest[rec.id]
        record = row.record
        v = versions.get(row.checklist_version_id)
        for o in record.off_script:
            near = [s for s in record.steps if s.start is not None and s.start <= o.start]
            items.append(Item(f"auto:{row.id}:{o.start:.2f}", rec.id, "", o.text, o.text,
                              max(near, key=lambda s: s.start).id if near else None,
                              max(0.0, o.start - CLIP_PAD_S), o.end + CLIP_PAD_S, call_time(rec),
                              v.checklist_id if v else None, v.version if v else None, rec.listen_path, by_machine=True))
    return items


def load_markers(session: Session) -> list[SituationMarker]:
    return list(session.scalars(select(SituationMarker).order_by(SituationMarker.id)))


def mark_covered(session: Session, item_keys: Sequence[str], checklist_id: str, version: int,
                 label: str = "", created_by: str | None = None) -> SituationMarker:
    """Record that the script ``checklist_id`` v``version`` now covers the situation made of these items."""
    if not item_keys:
        raise SituationError("Choose a situation (it has no items) before marking it covered.")
    known = session.scalar(select(ChecklistVersion.id).where(ChecklistVersion.checklist_id == checklist_id,
                                                             ChecklistVersion.version == version).limit(1))
    if known is None:
        raise SituationError(f"Script {checklist_id!r} has no version {version}. Load the new script version first "
                             "(callreview checklist add), then mark the situation covered.")
    marker = SituationMarker(checklist_id=checklist_id, version=version, label=label, item_keys=list(item_keys),
                             created_by=created_by)
    session.add(marker)
    session.flush()
    return marker


def situations(session: Session, threshold: float = DEFAULT_THRESHOLD,
               encoders: dict[str, Encoder] | None = None) -> list[Situation]:
    items = load_items(session) + load_machine_items(session)
    return build_situations(items, load_markers(session), threshold, encoders)


def to_frame(sits: Sequence[Situation], titles: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """The situations as the report table (one row each)."""
    titles = titles or {}
    rows = []
    for s in sits:
        cl = next((i.checklist_id for i in s.items if i.checklist_id), "")
        rows.append({
            "situation": s.number,
            "label": s.label,
            "count": s.count,
            "confirmed": s.confirmed,
            "calls": s.calls,
            "step_id": s.step_id,
            "step": titles.get((cl or "", s.step_id or ""), s.step_id),
            "examples": " | ".join(s.examples),
            "first_seen": s.first_seen,
            "last_seen": s.last_seen,
            "covered_in": f"{s.coverage.checklist_id} v{s.coverage.version}" if s.coverage else "",
            "since_covered": s.since_covered if s.coverage else None,
            "status": s.status,
            "items": ",".join(s.keys),
        })
    df = pd.DataFrame(rows, columns=["situation", "label", "count", "confirmed", "calls", "step_id", "step", "examples", "first_seen",
                                     "last_seen", "covered_in", "since_covered", "status", "items"])
    for col in ("first_seen", "last_seen"):
        # Excel cannot store time zones; the report is in UTC.
        df[col] = pd.to_datetime(df[col], utc=True).dt.tz_localize(None)
    return df


def situations_report(session: Session, data=None, encoders: dict[str, Encoder] | None = None) -> pd.DataFrame:
    return to_frame(situations(session, encoders=encoders), data.step_titles if data is not None else None)
