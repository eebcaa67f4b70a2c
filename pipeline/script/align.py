"""Align a transcript with the steps of a sales script.

Operator utterances are split into sentences; every sentence gets a score per
step (``pipeline.script.embed``), and an order-aware Viterbi picks for each sentence
one step or "off-script" so that the whole call reads best: the script order
is free, skipping ahead and going back cost a penalty, steps marked
``anywhere`` (objection handling) cost nothing wherever they are, and
off-script is an option of its own with a fixed score. Decoding the call as a
whole beats matching each sentence alone (see docs/benchmarks.md).

Sentences too short to be an item for the owner ("Да.", "Секунду.") may still
match a step ("До свидания!") but never become off-script candidates.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from pipeline.script.checklist import OFF_SCRIPT, Checklist
from pipeline.script.embed import Scorer, get_scorer
from pipeline.script.result import AlignmentRecord, ChecklistRef, CoverageRecord, OffScript, StepResult, UtteranceText
from pipeline.speech.transcript import CLIENT, OPERATOR, UNKNOWN, Transcript, Utterance, Word
from pipeline.vocabulary import StepStatus


@dataclass(frozen=True)
class AlignParams:
    """Decoder settings, tuned on tests/data/align (benchmarks/align_eval.py)."""

    off_score: float = 1.6  # a step must score above this to beat "off-script"
    skip_penalty: float = 0.6  # jumping over one or more steps of the script
    back_penalty: float = 1.5  # returning to an earlier step
    anywhere_penalty: float = 0.5  # a step allowed anywhere (objection), wherever it is
    # "threshold": a sentence is off-script when no step scores above off_score, and
    # the order only decides between steps; "joint": off-script competes inside the
    # Viterbi, so order penalties can push a sentence off-script
    off_mode: str = "joint"
    cue_weight: float = 0.3  # how much a client cue before a sentence counts (steps with client_cues)
    cue_offset: float = 3.0  # ordinary client turns score up to ~3 against the cues; above that is a cue
    cue_clip: tuple[float, float] = (-1.0, 2.0)
    min_words: int = 3  # shorter sentences are never off-script candidates
    # a step's confidence = sigmoid(slope * (score - off_score)). 0.75 was fitted
    # on the dev dialogues (ours and aligneval's) for the smallest calibration
    # error: at 2.0 steps found were stated at 0.99 and right 80-88% of the
    # time on other people's scripts (docs/benchmarks.md, Calibration)
    slope: float = 0.75
    # an off-script moment's confidence = sigmoid(b0 + b1 ln(words) + b2 neighbours + b3 position):
    # longer remarks, next to other off-script sentences, early in the call are
    # more often truly off-script. Fitted by logistic regression on the dev
    # dialogues (text and ASR, ours and aligneval's; 5-fold AUC 0.69, ECE 0.04).
    # How far the best step fell short (the old 1 - sigmoid(2 * margin)) told
    # almost nothing (AUC 0.58) and stated 0.8-1.0 for flags right half the time
    off_conf: tuple[float, float, float, float] = (-1.20, 0.64, 0.44, -1.35)
    # an unclear sentence (shorter than min_words, or heard below min_prob) takes
    # in its neighbours' scores in the same utterance: it counts with weight
    # words * ASR word probability, its neighbours with context_weight times
    # theirs, so garbled fragments (Whisper cuts a long offer into several)
    # lean on the sentences around them
    context_weight: float = 0.3
    # ASR word probability (mean over the sentence's words; 1 for typed text)
    # below which a sentence is "unclear": never reported as off-script
    min_prob: float = 0.7
    # off-script gets this much harder to pick per unit of missing word probability
    # (a sentence heard at probability 0.6 needs 0.4 * unclear_shift less to be a step)
    unclear_shift: float = 1.0


@dataclass
class Unit:
    """A sentence of a candidate utterance: what the decoder labels."""

    utterance: int
    text: str
    start: float
    end: float
    words: int
    cue: int | None = None  # the client utterance just before, if any
    prob: float = 1.0  # mean ASR word probability (1.0 when the transcript has none)


@dataclass
class Alignment:
    checklist: dict[str, Any]  # id, version, sha256
    scorer: str
    steps: list[StepResult]
    off_script: list[OffScript]
    # per candidate utterance index: the step ids found in it, in order
    utterance_steps: dict[int, list[str]] = field(default_factory=dict)
    # every sentence the decoder labelled: (unit, step id | OFF_SCRIPT | "filler")
    units: list[tuple[Unit, str]] = field(default_factory=list)

    def step(self, step_id: str) -> StepResult:
        return next(s for s in self.steps if s.id == step_id)

    @property
    def missing(self) -> list[str]:
        return [s.id for s in self.steps if s.status == StepStatus.MISSING]


# --- sentences ----------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)


_PUNCTUATED = re.compile(r"[.!?…]")
_TOKEN = re.compile(r"\S*\w\S*")  # a word as the recogniser times it ("как-то" is one)
# In text without sentence punctuation, a silence this long between two words
# ends a sentence (chosen on the dev ASR transcripts stripped of punctuation).
PAUSE_S = 0.4


def split_sentences(text: str) -> list[str]:
    """Split at sentence punctuation and line breaks; keeps the punctuation."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if _WORD.search(p)]


def split_at_pauses(text: str, words: Sequence[Word], pause_s: float = PAUSE_S) -> list[str]:
    """Cut unpunctuated text where the speaker paused; ``words`` are its word
    timestamps, one per word of the text (else the text stays whole)."""
    starts = [m.start() for m in _TOKEN.finditer(text)]
    if len(starts) != len(words):
        return [text]
    cuts = [starts[k] for k in range(1, len(words)) if words[k].start - words[k - 1].end >= pause_s]
    bounds = [0, *cuts, len(text)]
    return [text[a:b].strip() for a, b in zip(bounds, bounds[1:]) if text[a:b].strip()]


def candidate_indices(transcript: Transcript) -> list[int]:
    """Operator utterances; when no speaker is known (mono, no diarisation), all of them."""
    ops = [i for i, u in enumerate(transcript.utterances) if u.speaker == OPERATOR]
    if ops:
        return ops
    return [i for i, u in enumerate(transcript.utterances) if u.speaker == UNKNOWN]


def _units(i: int, utt: Utterance) -> list[Unit]:
    """The utterance's sentences: by punctuation where the text has it, else by pauses."""
    sentences = split_sentences(utt.text)
    if not sentences:
        return []
    words = [w for w in utt.words if _WORD.search(w.text)]
    if len(sentences) == 1 and not _PUNCTUATED.search(utt.text):
        sentences = split_at_pauses(sentences[0], words)
    counts = [len(_WORD.findall(s)) for s in sentences]
    total = sum(counts) or 1
    units, done = [], 0
    for s, c in zip(sentences, counts):
        if len(words) == total and c:
            # word timestamps line up with the text: exact sentence times
            start, end = words[done].start, words[done + c - 1].end
            mine = words[done : done + c]
        else:
            span = utt.end - utt.start
            start = utt.start + span * done / total
            end = utt.start + span * (done + c) / total
            mine = [w for w in words if start <= (w.start + w.end) / 2 <= end]
        prob = sum(w.probability for w in mine) / len(mine) if mine else 1.0
        units.append(Unit(i, s, float(start), float(end), c, prob=float(prob)))
        done += c
    return units


def smooth_scores(
    scores: np.ndarray, units: Sequence[Unit], weight: float, min_words: int = 0, min_prob: float = 0.0
) -> np.ndarray:
    """Mix the scores of each unclear sentence (shorter than ``min_words`` or heard
    below ``min_prob``) with its neighbours' in the same utterance, weighting every
    sentence by words x ASR word probability (see AlignParams)."""
    if not weight or len(units) < 2:
        return scores
    w = np.array([max(u.words, 1) * u.prob for u in units], np.float32)
    out = scores.copy()
    for t in range(len(units)):
        if units[t].words >= min_words and units[t].prob >= min_prob:
            continue  # a clear sentence of its own speaks for itself
        num = w[t] * scores[t]
        den = w[t]
        for j in (t - 1, t + 1):
            if 0 <= j < len(units) and units[j].utterance == units[t].utterance:
                num = num + weight * w[j] * scores[j]
                den += weight * w[j]
        out[t] = num / den
    return out


def transcript_units(transcript: Transcript) -> list[Unit]:
    units: list[Unit] = []
    candidates = candidate_indices(transcript)
    for i in candidates:
        cue = i - 1 if i > 0 and transcript.utterances[i - 1].speaker == CLIENT else None
        for unit in _units(i, transcript.utterances[i]):
            unit.cue = cue
            units.append(unit)
    return units


# --- decoding -----------------------------------------------------------------


def decode(
    scores: np.ndarray,
    order: Sequence[int | None],
    params: AlignParams = AlignParams(),
    off_scores: np.ndarray | None = None,
    off_shift: np.ndarray | None = None,
) -> list[int]:
    """Best label per unit: a step index, or -1 for off-script.

    ``order[k]`` is the 1-based position of step k in the script, or None for a
    step that may occur anywhere. The state is the script position of the last
    ordered step done (0 before any): the next step or a repeat is free,
    jumping ahead costs ``skip_penalty``, going back ``back_penalty``; steps
    allowed anywhere and off-script leave the state as it is."""
    n, k = scores.shape
    ordered = [s for s in range(k) if order[s] is not None]
    anywhere = [s for s in range(k) if order[s] is None]
    m = len(ordered)
    pos = np.array([order[s] for s in ordered], dtype=np.int64)  # 1..m
    states = np.arange(m + 1)[:, None]
    # cost[j, i]: from state j to ordered step i
    cost = np.where(
        (pos[None, :] == states) | (pos[None, :] == states + 1),
        0.0,
        np.where(pos[None, :] > states, params.skip_penalty, params.back_penalty),
    )
    off = np.full(n, params.off_score, np.float64)
    if off_shift is not None:
        off = off - off_shift
    if off_scores is not None:
        off = np.maximum(off, off_scores)
    if params.off_mode == "threshold" and n:
        in_script = scores.max(axis=1) > off
        off = np.where(in_script, -1e6, 1e6)

    if anywhere:
        any_scores = scores[:, anywhere] - params.anywhere_penalty
        any_best = any_scores.max(axis=1)
        any_arg = np.array(anywhere)[any_scores.argmax(axis=1)]
    best = np.full(m + 1, -1e18)
    best[0] = 0.0
    # per unit and new state: previous state and label
    back_prev = np.zeros((n, m + 1), dtype=np.int64)
    back_label = np.zeros((n, m + 1), dtype=np.int64)
    for t in range(n):
        # staying: off-script, or a step allowed anywhere
        stay_label = np.full(m + 1, -1)
        stay = best + off[t]
        if anywhere and any_best[t] > off[t]:
            stay = best + any_best[t]
            stay_label[:] = any_arg[t]
        new = stay
        prev = np.arange(m + 1)
        label = stay_label
        if m:
            moved = best[:, None] - cost  # (m+1, m)
            j_best = moved.argmax(axis=0)
            val = moved[j_best, np.arange(m)] + scores[t, ordered]
            target = pos  # new state of each ordered step
            better = val > new[target]
            new = new.copy()
            new[target[better]] = val[better]
            prev = prev.copy()
            prev[target[better]] = j_best[better]
            label = label.copy()
            label[target[better]] = np.array(ordered)[better]
        best = new
        back_prev[t] = prev
        back_label[t] = label
    labels = [0] * n
    state = int(np.argmax(best))
    for t in range(n - 1, -1, -1):
        labels[t] = int(back_label[t, state])
        state = int(back_prev[t, state])
    return labels


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _off_candidate(unit: Unit, params: AlignParams) -> bool:
    """Long enough to be an item for the owner, and heard clearly enough to be sure
    it is not a scripted sentence the recogniser mangled."""
    return unit.words >= params.min_words and unit.prob >= params.min_prob


def _assemble(
    transcript: Transcript,
    checklist: Checklist,
    units: list[Unit],
    scores: np.ndarray,
    off_scores: np.ndarray | None,
    params: AlignParams,
    scorer_name: str,
) -> Alignment:
    order: list[int | None] = []
    pos = 0
    for step in checklist.steps:
        if step.anywhere:
            order.append(None)
        else:
            pos += 1
            order.append(pos)
    scores = smooth_scores(scores, units, params.context_weight, params.min_words, params.min_prob)
    shift = np.array([params.unclear_shift * (1.0 - u.prob) for u in units]) if params.unclear_shift else None
    labels = decode(scores, order, params, off_scores, shift) if units else []

    def conf(t: int, s: int) -> float:
        return _sigmoid(params.slope * (float(scores[t, s]) - params.off_score))

    steps: list[StepResult] = []
    for s, step in enumerate(checklist.steps):
        hits = [t for t, lab in enumerate(labels) if lab == s]
        if hits:
            utts = sorted({units[t].utterance for t in hits})
            top = max(hits, key=lambda t: scores[t, s])
            steps.append(
                StepResult(
                    id=step.id,
                    title=step.title,
                    status=StepStatus.FOUND,
                    utterances=utts,
                    start=min(transcript.utterances[i].start for i in utts),
                    end=max(transcript.utterances[i].end for i in utts),
                    confidence=conf(top, s),
                    quote=units[top].text,
                    quote_start=units[top].start,
                    quote_end=units[top].end,
                )
            )
        else:
            closest = max((conf(t, s) for t in range(len(units))), default=0.0)
            steps.append(StepResult(id=step.id, title=step.title, status=StepStatus.MISSING, confidence=1.0 - closest))

    per_utt: dict[int, list[str]] = {}
    # off-script sentences of one utterance with no step sentence between them
    # (fillers may be) make one moment; a step sentence between starts another
    runs: list[list[int]] = []
    open_run = False
    bounds: dict[int, list[int]] = {}  # per utterance: its first and last sentence
    for t, lab in enumerate(labels):
        u = units[t].utterance
        bounds.setdefault(u, [t, t])[1] = t
        if u not in per_utt:
            per_utt[u], open_run = [], False
        if lab >= 0:
            open_run = False
            sid = checklist.steps[lab].id
            if sid not in per_utt[u]:
                per_utt[u].append(sid)
        elif _off_candidate(units[t], params):
            if open_run:
                runs[-1].append(t)
            else:
                runs.append([t])
                open_run = True

    def is_off(t: int) -> bool:
        return 0 <= t < len(units) and labels[t] < 0 and _off_candidate(units[t], params)

    call_end = max((x.end for x in units), default=1.0) or 1.0
    b0, b_words, b_near, b_pos = params.off_conf
    off_script = []
    for ts in runs:
        u = units[ts[0]].utterance
        text = " ".join(units[t].text for t in ts)
        first, last = bounds[u]
        near = is_off(first - 1) + is_off(last + 1)  # the sentences just before and after the utterance
        logit = b0 + b_words * math.log(max(len(text.split()), 1)) + b_near * near + b_pos * units[ts[0]].start / call_end
        off_script.append(OffScript(utterance=u, start=units[ts[0]].start, end=units[ts[-1]].end, text=text, confidence=_sigmoid(logit)))
    off_script.sort(key=lambda o: (o.start, o.utterance))
    labelled = [
        (u, checklist.steps[lab].id if lab >= 0 else OFF_SCRIPT if _off_candidate(u, params) else "filler")
        for u, lab in zip(units, labels)
    ]
    return Alignment(checklist.ref(), scorer_name, steps, off_script, per_utt, labelled)


def align_many(
    transcripts: Sequence[Transcript],
    checklist: Checklist,
    scorer: Scorer | None = None,
    extra_examples: dict[str, list[str]] | None = None,
    params: AlignParams = AlignParams(),
) -> list[Alignment]:
    """Align many calls with one batched scoring pass (the fast path for batches).
    A mono call split by voice (``transcript.speakers``) is aligned both ways
    round, and the voice that performs more of the script is the operator: the
    transcript takes the swapped speakers when that is the other voice."""
    scorer = scorer or get_scorer()
    split = [i for i, t in enumerate(transcripts) if t.speakers]
    swapped = [_swapped(transcripts[i]) for i in split]
    both = _align_batch([*transcripts, *swapped], checklist, scorer, extra_examples, params)
    out = both[: len(transcripts)]
    for i, turned, other in zip(split, swapped, both[len(transcripts) :]):
        mine, theirs = _script_fit(out[i]), _script_fit(other)
        if theirs > mine:
            transcripts[i].utterances = turned.utterances
            out[i], mine, theirs = other, theirs, mine
        transcripts[i].speakers = {**transcripts[i].speakers, "operator_by": "script", "operator_steps": mine[0], "client_steps": theirs[0]}
    return out


_SWAP = {OPERATOR: CLIENT, CLIENT: OPERATOR}


def _swapped(transcript: Transcript) -> Transcript:
    """The call with operator and client named the other way round."""
    utts = [dataclasses.replace(u, speaker=_SWAP.get(u.speaker, u.speaker)) for u in transcript.utterances]
    return dataclasses.replace(transcript, utterances=utts, speakers=None)


def _script_fit(alignment: Alignment) -> tuple[int, float]:
    """Steps found, then their summed confidence: how well a voice performs the script."""
    found = [s for s in alignment.steps if s.status == StepStatus.FOUND]
    return len(found), round(sum(s.confidence for s in found), 3)


def _align_batch(
    transcripts: Sequence[Transcript],
    checklist: Checklist,
    scorer: Scorer,
    extra_examples: dict[str, list[str]] | None,
    params: AlignParams,
) -> list[Alignment]:
    """One batched scoring pass over the calls' operator sentences, then each call decoded."""
    space = scorer.space(checklist, extra_examples)
    per_call = [transcript_units(t) for t in transcripts]
    flat = [u.text for units in per_call for u in units]
    scores = scorer.score(flat, space.steps)
    off_scores = scorer.score(flat, space.off_script)[:, 0] if space.off_script else None
    if space.cues is not None and params.cue_weight:
        # client turns right before operator sentences; no client turn, no cue either way
        cue_texts = [t.utterances[u.cue].text for t, units in zip(transcripts, per_call) for u in units if u.cue is not None]
        has_cue = np.array([u.cue is not None for units in per_call for u in units], dtype=bool)
        cue_scores = np.zeros((len(flat), len(space.cues.names)), np.float32)
        if cue_texts:
            cue_scores[has_cue] = np.clip(scorer.score(cue_texts, space.cues) - params.cue_offset, *params.cue_clip)
        cols = [space.step_ids.index(name) for name in space.cues.names]
        scores[:, cols] += params.cue_weight * cue_scores
    out, at = [], 0
    for transcript, units in zip(transcripts, per_call):
        sl = slice(at, at + len(units))
        at += len(units)
        out.append(
            _assemble(
                transcript,
                checklist,
                units,
                scores[sl],
                off_scores[sl] if off_scores is not None else None,
                params,
                scorer.name,
            )
        )
    return out


def align(
    transcript: Transcript,
    checklist: Checklist,
    scorer: Scorer | None = None,
    extra_examples: dict[str, list[str]] | None = None,
    params: AlignParams = AlignParams(),
) -> Alignment:
    """Align one call with its script. ``extra_examples`` maps a step id (or
    ``OFF_SCRIPT``) to listener-confirmed phrasings (see ``pipeline.storage.checklists.reviewed_examples``)."""
    return align_many([transcript], checklist, scorer, extra_examples, params)[0]


def alignment_record(file_name: str, transcript: Transcript, checklist: Checklist, alignment: Alignment) -> AlignmentRecord:
    """What ``callreview analyze`` writes and ``process`` stores for one input (docs/output-format.md)."""
    return AlignmentRecord(
        file=file_name,
        checklist=ChecklistRef(**checklist.ref()),
        scorer=alignment.scorer,
        duration=round(transcript.duration, 2),
        utterances=[
            UtteranceText(i=i, speaker=u.speaker, start=round(u.start, 2), end=round(u.end, 2), text=u.text)
            for i, u in enumerate(transcript.utterances)
        ],
        steps=alignment.steps,
        off_script=alignment.off_script,
        coverage=CoverageRecord.model_validate(transcript.to_dict()["coverage"]) if transcript.coverage else None,
        speakers=transcript.speakers,
    )
