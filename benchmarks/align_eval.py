"""Script alignment quality on labelled dialogues: our own (tests/data/align/)
and ../shared/aligneval/ (four kinds of shop whose scripts and dialogues were
written apart, by people who never saw this code; its README).

Each dialogue is a text file: ``O <label>: text`` for an operator turn (label =
step id, several joined by ``+``, ``off_script`` or ``none`` for a backchannel)
and ``C: text`` for a client turn; ``# checklist:``, ``# split:`` and (aligneval)
``# kind:`` headers. Tune on ``dev``, report ``test``: aligneval's dev kinds are
furniture and food delivery, its test kinds internet provider and cosmetics.
Turn times are synthetic (0.33 s per word), or come from the ASR transcripts
cached in tests/data/align/asr/ (made by ``--make-asr``: the dialogues spoken
by festival over a simulated phone line, transcribed by Whisper base).

Scored per labelled operator turn: the labels of the aligned sentences whose
middle lies within the turn's time (so it works on ASR turns that are cut and
merged differently). Prints per-step precision/recall/F1, off-script
recall/precision, turn accuracy and step-presence F1 (per call).

    python benchmarks/align_eval.py                     # reference text, both sets, all splits
    python benchmarks/align_eval.py --sets aligneval --split dev
    python benchmarks/align_eval.py --asr               # cached ASR transcripts
    python benchmarks/align_eval.py --models use+e5+tfidf --compare-greedy
    python benchmarks/align_eval.py --learning          # and after 0, 1, 2, 5 reviewed calls
    python benchmarks/align_eval.py --make-asr          # synthesize + Whisper (slow)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.script.align import AlignParams, align_many, transcript_units  # noqa: E402
from pipeline.script.checklist import OFF_SCRIPT, Checklist, load_checklist  # noqa: E402
from pipeline.script.embed import get_scorer  # noqa: E402
from pipeline.speech.transcript import CLIENT, OPERATOR, Transcript, Utterance  # noqa: E402

DATA = ROOT / "tests" / "data" / "align"
ALIGNEVAL = ROOT.parent / "shared" / "aligneval"
SETS = ("own", "aligneval")
DIALOGUES = DATA / "dialogues"
ASR_DIR = DATA / "asr"
CHECKLISTS = ROOT / "checklists"
NONE = "none"
_LINE = re.compile(r"^(?P<who>[OC])(?:\s+(?P<label>[\w+]+))?\s*:\s*(?P<text>.+)$")


@dataclass
class Dialogue:
    id: str
    checklist_id: str
    split: str
    transcript: Transcript
    labels: dict[int, frozenset[str]] = field(default_factory=dict)  # operator turn -> labels
    spans: dict[int, tuple[float, float]] = field(default_factory=dict)  # operator turn -> its time
    source: str = "own"  # which set: own or aligneval
    kind: str = ""  # the kind of shop (aligneval) or the script's id (own)
    scripts: Path = CHECKLISTS  # where its script lives
    channel: str = "call"  # call or chat (a chat has no audio)


def load_dialogue(path: Path, source: str = "own", scripts: Path = CHECKLISTS) -> Dialogue:
    meta: dict[str, str] = {}
    utts: list[Utterance] = []
    labels: dict[int, frozenset[str]] = {}
    t = 0.5
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if ":" in line:
                key, value = line[1:].split(":", 1)
                meta[key.strip()] = value.strip()
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"{path}:{n}: expected 'O label: text' or 'C: text'")
        text = m["text"].strip()
        dur = 0.6 + 0.33 * len(text.split())
        speaker = OPERATOR if m["who"] == "O" else CLIENT
        if speaker == OPERATOR:
            if not m["label"]:
                raise ValueError(f"{path}:{n}: operator turn without a label")
            labels[len(utts)] = frozenset(m["label"].split("+"))
        utts.append(Utterance(speaker=speaker, start=round(t, 2), end=round(t + dur, 2), text=text, channel=0 if speaker == OPERATOR else 1))
        t += dur + 0.4
    transcript = Transcript(utterances=utts, duration=round(t, 2), language="ru", model="reference")
    spans = {i: (utts[i].start, utts[i].end) for i in labels}
    return Dialogue(path.stem, meta["checklist"], meta.get("split", "dev"), transcript, labels, spans,
                    source, meta.get("kind", meta["checklist"]), scripts, meta.get("channel", "call"))


def load_dialogues(split: str | None = None, sets: tuple[str, ...] = ("own",), aligneval: Path = ALIGNEVAL) -> list[Dialogue]:
    """The labelled dialogues of ``sets``; aligneval's come with their own scripts."""
    folders = {"own": (DIALOGUES, CHECKLISTS), "aligneval": (aligneval / "dialogues", aligneval / "scripts")}
    out = [load_dialogue(p, s, folders[s][1]) for s in sets for p in sorted(folders[s][0].glob("*.txt"))]
    return [d for d in out if split in (None, "all", d.split)]


def checklist_for(dialogue: Dialogue) -> Checklist:
    return load_checklist(dialogue.scripts / f"{dialogue.checklist_id}.yaml")


# --- ASR transcripts ----------------------------------------------------------


def asr_dir(source: str) -> Path:
    """Where the Whisper transcripts of a set's spoken dialogues are kept: our
    own in the repository (tests use them); aligneval's in the synthesis cache,
    as its README asks that its dialogues not be copied into the project."""
    if source == "own":
        return ASR_DIR
    from data.synthesize import _cache_dir  # another stage's tool

    return _cache_dir() / f"{source}-asr"


def asr_dialogue(ref: Dialogue) -> Dialogue | None:
    """The cached Whisper transcript of the synthesized dialogue; labels stay on
    the reference turns, whose times come from the synthesis."""
    path = asr_dir(ref.source) / f"{ref.id}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    transcript = Transcript.from_dict(data["transcript"])
    turns = data["turns"]  # reference turns as synthesized: speaker, start, end
    spans = {i: (turns[i]["start"], turns[i]["end"]) for i in ref.labels}
    return Dialogue(ref.id, ref.checklist_id, ref.split, transcript, ref.labels, spans, ref.source, ref.kind, ref.scripts, ref.channel)


# --- metrics ---------------------------------------------------------------------


def predicted_labels(alignment, span: tuple[float, float]) -> frozenset[str]:
    """What the aligner said about the sentences whose middle lies in a turn's
    time span (ASR cuts and merges turns differently from the reference)."""
    start, end = span
    inside = [lab for u, lab in alignment.units if start - 0.25 <= (u.start + u.end) / 2 <= end + 0.25]
    steps = {lab for lab in inside if lab not in (OFF_SCRIPT, "filler")}
    if steps:
        return frozenset(steps)
    if OFF_SCRIPT in inside:
        return frozenset([OFF_SCRIPT])
    return frozenset([NONE])


def evaluate(dialogues: list[Dialogue], alignments: list) -> dict:
    tp: dict[str, int] = defaultdict(int)
    fp: dict[str, int] = defaultdict(int)
    fn: dict[str, int] = defaultdict(int)
    correct = total = 0
    pres_tp = pres_fp = pres_fn = 0
    flagged = flagged_right = labelled_off = 0  # off-script per sentence, aligneval's rule: sentences labelled none count neither way
    for d, a in zip(dialogues, alignments):
        for i, gold in d.labels.items():
            pred = predicted_labels(a, d.spans[i])
            total += 1
            correct += pred == gold
            if gold != {NONE}:
                flagged += OFF_SCRIPT in pred
                flagged_right += OFF_SCRIPT in pred and OFF_SCRIPT in gold
                labelled_off += OFF_SCRIPT in gold
            for lab in pred | gold:
                if lab == NONE:
                    continue
                if lab in pred and lab in gold:
                    tp[lab] += 1
                elif lab in pred:
                    fp[lab] += 1
                else:
                    fn[lab] += 1
        gold_steps = {lab for labs in d.labels.values() for lab in labs} - {OFF_SCRIPT, NONE}
        found = {s.id for s in a.steps if s.status == "found"}
        pres_tp += len(found & gold_steps)
        pres_fp += len(found - gold_steps)
        pres_fn += len(gold_steps - found)

    def prf(t: int, p: int, n: int) -> tuple[float, float, float]:
        prec = t / (t + p) if t + p else 1.0
        rec = t / (t + n) if t + n else 1.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        return prec, rec, f1

    per_step = {lab: prf(tp[lab], fp[lab], fn[lab]) for lab in sorted(set(tp) | set(fp) | set(fn)) if lab != OFF_SCRIPT}
    step_tp = sum(tp[k] for k in per_step)
    step_fp = sum(fp[k] for k in per_step)
    step_fn = sum(fn[k] for k in per_step)
    off = prf(tp[OFF_SCRIPT], fp[OFF_SCRIPT], fn[OFF_SCRIPT])
    return {
        "utterances": total,
        "accuracy": correct / total if total else 0.0,
        "per_step": per_step,
        "support": {lab: tp[lab] + fn[lab] for lab in per_step},
        "step_micro": prf(step_tp, step_fp, step_fn),
        "step_macro_f1": sum(v[2] for v in per_step.values()) / len(per_step) if per_step else 0.0,
        "off_script": off,
        "off_script_support": tp[OFF_SCRIPT] + fn[OFF_SCRIPT],
        "presence": prf(pres_tp, pres_fp, pres_fn),
        "off_script_sentences": (flagged_right / flagged if flagged else 1.0, flagged_right / labelled_off if labelled_off else 1.0, labelled_off),
    }


def _covers(span: tuple[float, float], o) -> bool:
    """Whether an off-script moment's middle lies in a labelled sentence's time."""
    return span[0] - 0.25 <= (o.start + o.end) / 2 <= span[1] + 0.25


def _flag_labels(d: Dialogue, o) -> frozenset[str] | None:
    """The labels of the sentence an off-script moment is judged by: the first at its middle."""
    return next((d.labels[i] for i, span in d.spans.items() if _covers(span, o)), None)


def judged(dialogues: list[Dialogue], alignments: list) -> dict[str, list[tuple[float, bool]]]:
    """Every suggestion the review form is pre-filled with, as (confidence, right):
    a step reported found is right if the call does that step (presence); an
    off-script moment is right if the labelled sentence at its middle is
    off-script (one labelled none counts neither way)."""
    out: dict[str, list[tuple[float, bool]]] = {"steps": [], "off-script": []}
    for d, a in zip(dialogues, alignments):
        gold_steps = {lab for labs in d.labels.values() for lab in labs} - {OFF_SCRIPT, NONE}
        out["steps"] += [(s.confidence, s.id in gold_steps) for s in a.steps if s.status == "found"]
        for o in a.off_script:
            under = _flag_labels(d, o)
            if under and under != {NONE}:
                out["off-script"].append((o.confidence, OFF_SCRIPT in under))
    return out


def reliability(items: list[tuple[float, bool]], edges=(0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)) -> tuple[list[tuple[str, int, float, float]], float]:
    """Bins of stated confidence against the share that was right, and the
    expected calibration error (gap weighted by the bin's share of items)."""
    rows, ece = [], 0.0
    for lo, hi in zip(edges, edges[1:]):
        inside = [(c, ok) for c, ok in items if lo <= c < hi or (hi == edges[-1] and c == hi)]
        if inside:
            conf = sum(c for c, _ in inside) / len(inside)
            right = sum(ok for _, ok in inside) / len(inside)
            rows.append((f"{lo:.1f}-{hi:.1f}", len(inside), conf, right))
            ece += len(inside) / len(items) * abs(conf - right)
    return rows, ece


def calibration(dialogues: list[Dialogue], alignments: list) -> str:
    """Reliability tables per set and split: is a suggestion at 0.9 right 9 times in 10?"""
    lines = []
    for source, split in dict.fromkeys((d.source, d.split) for d in dialogues):
        idx = [i for i, d in enumerate(dialogues) if (d.source, d.split) == (source, split)]
        for what, items in judged([dialogues[i] for i in idx], [alignments[i] for i in idx]).items():
            if not items:
                continue
            rows, ece = reliability(items)
            lines.append(f"{source} {split}, {what}: {len(items)} suggestions, expected calibration error **{ece:.3f}**\n")
            lines.append("| confidence | suggestions | mean confidence | share right |\n|---|---|---|---|")
            lines += [f"| {name} | {n} | {conf:.2f} | {right:.2f} |" for name, n, conf, right in rows]
            lines.append("")
    return "\n".join(lines)


def summary(dialogues: list[Dialogue], alignments: list) -> str:
    """One row per set, kind and split, then per set and split: the figures
    issue 19 asks for (step presence per call; off-script per sentence)."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, d in enumerate(dialogues):
        groups[d.source, d.kind, d.split].append(i)
        groups[d.source, "**all kinds**", d.split].append(i)
    lines = ["| set | kind | split | dialogues | sentences | step presence P / R / F1 | off-script recall | off-script precision | sentence accuracy |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (source, kind, split), idx in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1].startswith("*"), kv[0][1])):
        m = evaluate([dialogues[i] for i in idx], [alignments[i] for i in idx])
        p, r, f = m["presence"]
        op, orc, n_off = m["off_script_sentences"]
        lines.append(f"| {source} | {kind} | {split} | {len(idx)} | {m['utterances']} | {p:.2f} / {r:.2f} / **{f:.3f}** | "
                     f"**{orc:.2f}** ({n_off}) | {op:.2f} | {m['accuracy']:.3f} |")
    return "\n".join(lines)


def run(dialogues: list[Dialogue], models: str | None = None, params: AlignParams = AlignParams(), extra=None):
    scorer = get_scorer(models)
    by_checklist: dict[tuple[Path, str], list[int]] = defaultdict(list)
    for i, d in enumerate(dialogues):
        by_checklist[d.scripts, d.checklist_id].append(i)
    alignments: list = [None] * len(dialogues)
    for cid, idx in by_checklist.items():
        checklist = checklist_for(dialogues[idx[0]])
        for i, a in zip(idx, align_many([dialogues[i].transcript for i in idx], checklist, scorer, extra, params)):
            alignments[i] = a
    return alignments


def review_of(d: Dialogue, a) -> dict[str, list[str]]:
    """What a listener who agrees with the labels leaves in one call's review,
    read the way ``learned_examples`` reads a stored one:
    each step found that the call does, marked correct (its quoted sentence);
    each flag, ticked when right; each off-script sentence no right flag covers,
    added as a moment (the text of the utterance playing at its start, as
    ``add_moment`` stores it)."""
    gold = {lab for labs in d.labels.values() for lab in labs}
    examples: dict[str, list[str]] = defaultdict(list)
    for s in a.steps:
        if s.status == "found" and s.id in gold and s.quote:
            examples[s.id].append(s.quote)
    right = [o for o in a.off_script if OFF_SCRIPT in (_flag_labels(d, o) or ())]  # ticked: the flags ``judged`` calls right
    examples[OFF_SCRIPT] += [o.text for o in right]
    for i, (s, e) in d.spans.items():
        if OFF_SCRIPT in d.labels[i] and not any(_covers((s, e), o) for o in right):
            playing = [u for u in d.transcript.utterances if u.start <= s + 0.25]
            if playing and playing[-1].end >= s - 5:
                examples[OFF_SCRIPT].append(playing[-1].text)
    return dict(examples)


def learning_curve(dialogues: list[Dialogue], models: str | None, counts=(0, 1, 2, 5), seed: int = 19,
                   params: AlignParams = AlignParams()) -> str:
    """Step presence F1, off-script recall and the off-script calibration error
    after ``counts`` reviewed calls, and after the whole reviewed half.

    Each kind's dialogues are shuffled (``seed``) and halved; the calls of one
    half are reviewed in that order (``review_of``: what the review app would
    store), the other half is aligned with what was learned, then the halves
    swap, and both held-out halves are scored together. The held-out calls are
    the same for every count, so the rows differ only by what was learned. A
    reviewed call was itself aligned with what the calls before it taught, as
    ``process`` would have."""
    import random

    scorer = get_scorer(models)
    groups: dict[tuple[str, str, str], list[Dialogue]] = defaultdict(list)
    for d in dialogues:
        groups[d.source, d.kind, d.split].append(d)
    results: dict[tuple[str, str, int], tuple[list[Dialogue], list]] = defaultdict(lambda: ([], []))

    def taught(reviews: list[dict[str, list[str]]]) -> dict[str, list[str]]:
        examples: dict[str, list[str]] = defaultdict(list)
        for learned in reviews:
            for key, texts in learned.items():
                examples[key] += [t for t in texts if t not in examples[key]]
        return dict(examples)

    for (source, kind, split), group in sorted(groups.items()):
        order = sorted(group, key=lambda d: d.id)
        random.Random(f"{seed}{kind}").shuffle(order)
        half = len(order) // 2
        checklist = checklist_for(order[0])
        for reviewed, held in ((order[:half], order[half:]), (order[half:], order[:half])):
            reviews = []
            for j, d in enumerate(reviewed):
                [a] = align_many([d.transcript], checklist, scorer, taught(reviews[:j]), params)
                reviews.append(review_of(d, a))
            for k in [k for k in counts if k < len(reviewed)] + [len(reviewed)]:  # the last point: the whole half
                aligned = align_many([d.transcript for d in held], checklist, scorer, taught(reviews[:k]), params)
                for key in ((source, split, k), (source, f"{kind} {split}", k)):
                    results[key][0].extend(held)
                    results[key][1].extend(aligned)
    lines = ["| set | kind / split | reviewed calls | held-out sentences | step presence F1 | off-script recall | off-script precision "
             "| off-script ECE |",
             "|---|---|---|---|---|---|---|---|"]
    for (source, what, k), (held, aligned) in sorted(results.items(), key=lambda kv: (kv[0][0], " " in kv[0][1], kv[0][1], kv[0][2])):
        m = evaluate(held, aligned)
        op, orc, _ = m["off_script_sentences"]
        flags = judged(held, aligned)["off-script"]
        lines.append(f"| {source} | {what} | {k} | {m['utterances']} | **{m['presence'][2]:.3f}** | **{orc:.2f}** | {op:.2f} | "
                     + (f"{reliability(flags)[1]:.3f} |" if flags else "- |"))
    return "\n".join(lines)


def report(title: str, m: dict) -> str:
    lines = [f"### {title}", "", f"{m['utterances']} labelled operator utterances; utterance accuracy {m['accuracy']:.3f}", ""]
    lines.append("| step | precision | recall | F1 | support |")
    lines.append("|---|---|---|---|---|")
    for lab, (p, r, f) in m["per_step"].items():
        lines.append(f"| {lab} | {p:.2f} | {r:.2f} | {f:.2f} | {m['support'][lab]} |")
    p, r, f = m["step_micro"]
    lines.append(f"| **all steps (micro)** | {p:.3f} | {r:.3f} | **{f:.3f}** | |")
    lines.append(f"| all steps (macro F1) | | | {m['step_macro_f1']:.3f} | |")
    p, r, f = m["off_script"]
    lines.append(f"| **off-script** | {p:.3f} | **{r:.3f}** | {f:.3f} | {m['off_script_support']} |")
    p, r, f = m["presence"]
    lines.append(f"| step presence per call | {p:.3f} | {r:.3f} | {f:.3f} | |")
    return "\n".join(lines)


# --- synthesized audio -> Whisper -> cached JSON --------------------------------------------


def make_asr(dialogues: list[Dialogue]) -> None:
    """Synthesize each call (not the chats) as a two-channel call, operator and
    client in two voices over a simulated phone line, transcribe it with the
    real model, and cache transcript + turn times (``asr_dir``)."""
    import tempfile

    from data.synthesize import SynthesisError, build_call, write_call  # another stage's tool
    from pipeline.config import get_settings
    from pipeline.speech.audio import decode
    from pipeline.speech.transcribe import TranscribeOptions, get_transcriber

    transcriber = get_transcriber(TranscribeOptions.from_settings(get_settings()))
    for d in (d for d in dialogues if d.channel == "call"):
        turns = [{"speaker": u.speaker, "text": u.text, "step": None} for u in d.transcript.utterances]
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / f"{d.id}.wav"
            try:
                audio, refs = build_call(turns, seed=sum(map(ord, d.id)))
            except SynthesisError as exc:  # one text festival cannot speak must not stop the others
                print(f"{d.id}: cannot be spoken, left out ({exc})", file=sys.stderr, flush=True)
                continue
            write_call(wav, audio)
            started = time.perf_counter()
            transcript = transcriber.transcribe(decode(wav, operator_channel="left"))
            seconds = time.perf_counter() - started
        timed = [{"speaker": r["speaker"], "start": r["start"], "end": r["end"]} for r in refs]
        out = {"dialogue": d.id, "made_by": "benchmarks/align_eval.py --make-asr", "seconds": round(seconds, 1),
               "turns": timed, "transcript": transcript.to_dict()}
        asr_dir(d.source).mkdir(parents=True, exist_ok=True)
        (asr_dir(d.source) / f"{d.id}.json").write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        print(f"{d.id}: {len(transcript.utterances)} utterances in {seconds:.1f} s", flush=True)


def separability(dialogues: list[Dialogue], models: str | None) -> str:
    """How well the sentence scores alone tell script steps from off-script,
    before any decoding: per labelled operator sentence (``none`` left out), its
    best step score; the AUC of that score for "in the script", and off-script
    recall and precision when every sentence under a threshold is flagged. No
    decoder can do much better than the scores it is given."""
    from sklearn.metrics import roc_auc_score

    scorer = get_scorer(models)
    lines = ["| set | split | sentences | off-script | AUC | recall / precision at threshold 1.6 | 2.5 | 3.0 |", "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[tuple[bool, float]]] = defaultdict(list)
    for d in dialogues:
        units = transcript_units(d.transcript)
        if not units:
            continue
        best = scorer.score([u.text for u in units], scorer.space(checklist_for(d)).steps).max(axis=1)
        for i, gold in d.labels.items():
            start, end = d.spans[i]
            inside = [k for k, u in enumerate(units) if start - 0.25 <= (u.start + u.end) / 2 <= end + 0.25]
            if inside and gold != {NONE}:
                groups[d.source, d.split].append((OFF_SCRIPT in gold, float(max(best[k] for k in inside))))
    for (source, split), items in sorted(groups.items()):
        off = np.array([o for o, _ in items])
        score = np.array([x for _, x in items])
        cells = []
        for th in (1.6, 2.5, 3.0):
            flagged = score < th
            cells.append(f"{(flagged & off).sum() / max(1, off.sum()):.2f} / {(flagged & off).sum() / max(1, flagged.sum()):.2f}")
        auc = roc_auc_score(~off, score) if 0 < off.sum() < len(off) else float("nan")
        lines.append(f"| {source} | {split} | {len(items)} | {off.sum()} | {auc:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="all", choices=["dev", "test", "all"])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: own (tests/data/align), aligneval (../shared/aligneval)")
    ap.add_argument("--aligneval", type=Path, default=ALIGNEVAL, help="folder with aligneval's dialogues/ and scripts/ (default: ../shared/aligneval)")
    ap.add_argument("--models", default=None, help="use+tfidf (default), use+e5+tfidf, e5+tfidf, ...")
    ap.add_argument("--asr", action="store_true", help="evaluate on the cached ASR transcripts")
    ap.add_argument("--make-asr", action="store_true", help="synthesize and transcribe the dialogues first")
    ap.add_argument("--compare-greedy", action="store_true", help="also score each utterance on its own (no Viterbi)")
    ap.add_argument("--learning", action="store_true", help="also print the learning curve: figures after 0, 1, 2 and half the kind's calls reviewed")
    ap.add_argument("--separability", action="store_true", help="also print how well the best step score alone tells steps from off-script (AUC)")
    args = ap.parse_args()

    sets = tuple(s for s in args.sets.split(",") if s)
    if set(sets) - set(SETS):
        sys.exit(f"unknown set: {', '.join(sorted(set(sets) - set(SETS)))}")
    if "aligneval" in sets and not (args.aligneval / "dialogues").is_dir():
        print(f"{args.aligneval}: no aligneval dialogues here; scoring our own only", file=sys.stderr)
        sets = tuple(s for s in sets if s != "aligneval")
    dialogues = load_dialogues(args.split, sets, args.aligneval)
    if args.make_asr:
        make_asr(dialogues)
    if args.asr:
        heard = [a for a in (asr_dialogue(d) for d in dialogues) if a is not None]
        missing = sorted({d.id for d in dialogues} - {a.id for a in heard})
        if missing:
            print(f"left out, no cached ASR transcript (chats have no audio; else run --make-asr): {', '.join(missing)}", file=sys.stderr)
        dialogues = heard
        if not dialogues:
            sys.exit("no cached ASR transcripts; run with --make-asr first")
    started = time.perf_counter()
    alignments = run(dialogues, args.models)
    seconds = time.perf_counter() - started
    text = "ASR text" if args.asr else "reference text"
    name = alignments[0].scorer if alignments else args.models
    print(f"## {text}, scorer {name}\n\n{summary(dialogues, alignments)}\n")
    print(f"## Calibration, {text}\n\n{calibration(dialogues, alignments)}")
    for source in dict.fromkeys(d.source for d in dialogues):
        idx = [i for i, d in enumerate(dialogues) if d.source == source]
        print(report(f"{source}, {text}, {args.split} split, {len(idx)} dialogues, Viterbi",
                     evaluate([dialogues[i] for i in idx], [alignments[i] for i in idx])) + "\n")
    print(f"({seconds:.1f} s including model loading)\n")
    if args.learning:
        print(f"## Learning from reviews, {text} (reviews as the review app stores them)\n\n{learning_curve(dialogues, args.models)}\n")
    if args.separability:
        print(f"## Steps against off-script by the best step score alone, {text}, scorer {name}\n\n{separability(dialogues, args.models)}\n")
    if args.compare_greedy:
        greedy = AlignParams(skip_penalty=0.0, back_penalty=0.0)
        print(report(f"{text}, {args.split} split, each utterance alone (no order)", evaluate(dialogues, run(dialogues, args.models, greedy))))


if __name__ == "__main__":
    main()
