"""Who spoke when on mono calls: diarization error rate of callreview's transcripts.

    .venv/bin/python benchmarks/diarization.py

The sets:

  pyannote    ../shared/realspeech/pyannote-audio/sample.wav, a real telephone
              conversation between two women, scored against its RTTM (test)
  aepyx pairs ../shared/realspeech/silero-vad/aepyx_8k.wav (real 8 kHz speech,
              four speakers in its RTTM), once per pair of speakers with the
              other two silenced: six real two-voice recordings (dev)
  aepyx short the same pairs in short turns: each speaker's speech cut at
              quiet frames into 0.8-3 s pieces, the two speakers' pieces
              taking turns with 0.15-0.6 s between them (dev): real voices
              with the turn lengths of a phone call
  demo mixes  the six demo calls (data/demo) mixed down to mono, scored against
              the turn times they were built from
  voip        the 19 labelled dialogues as one mono mix with digital silence
              between turns 0.15-0.6 s apart (benchmarks/real_speech.py's
              voip set), their own split

The hypothesis is the transcript as the pipeline stores it with
``CALLREVIEW_SPEAKERS=voice``: each utterance, start to end, is its speaker's speech. DER is the
usual frame count at 10 ms, no collar: (missed + false alarm + confusion) /
reference speech, overlap counted per speaker. "DER" maps the two voices to
the reference speakers the best way round; "DER as named" takes operator and
client as the pipeline named them (the demo calls only: the operator speaks
first there), so it also scores the operator guess. On the mixes it
also aligns the appliances script twice, on the split transcript and on the
same mix left as one "unknown" speaker, and scores the steps found against the
steps of the reference turns: does the split help the aligner? Settings are tuned on the
dev split (demo calls 1-3, the aepyx pairs, the voip dev dialogues) only;
calls 4-6, sample.wav and the voip test dialogues are the test split.
Prints Markdown; not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REALSPEECH = REPO.parent / "shared" / "realspeech"
STEP = 0.01


def frames(turns: list[tuple[str, float, float]]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for who, s, e in turns:
        for k in range(int(round(s / STEP)), int(round(e / STEP))):
            out[k].add(who)
    return out


def der(ref: list[tuple[str, float, float]], hyp: list[tuple[str, float, float]], mapping: dict[str, str]) -> float:
    r, h = frames(ref), frames([(mapping.get(w, w), s, e) for w, s, e in hyp])
    err = total = 0
    for k in set(r) | set(h):
        a, b = r.get(k, set()), h.get(k, set())
        err += max(len(a), len(b)) - len(a & b)
        total += len(a)
    return err / max(1, total)


def best_der(ref, hyp) -> float:
    names = sorted({w for w, _, _ in ref})
    voices = sorted({w for w, _, _ in hyp})
    if len(names) < 2 or len(voices) < 2:
        return min(der(ref, hyp, {v: n for v in voices}) for n in names)
    return min(der(ref, hyp, dict(zip(voices, p))) for p in (names[:2], names[1::-1]))


def short_turns(audio, turns, pair, seed: int, rate: int = 16000, cap_s: float = 30.0):
    """Two speakers' speech (at most ``cap_s`` each) in alternating 0.8-3 s
    pieces, cut at the quietest 32 ms frame near the drawn length; the audio
    and its reference turns."""
    import numpy as np

    from pipeline.speech.regions import FRAME, frame_db

    rng = np.random.default_rng(seed)
    pieces = {}
    for who in pair:
        speech = np.concatenate([audio[int(s * rate) : int(e * rate)] for w, s, e in turns if w == who])[: int(cap_s * rate)]
        db, fs, n = frame_db(speech), FRAME / rate, len(speech) / rate
        bounds, t = [0.0], 0.0
        while n - t > 3.5:
            lo = int((t + rng.uniform(0.8, 3.0) - 0.3) / fs)
            t = (lo + int(np.argmin(db[lo : lo + int(0.6 / fs)]))) * fs
            bounds.append(t)
        bounds.append(n)
        pieces[who] = [speech[int(a * rate) : int(b * rate)] for a, b in zip(bounds, bounds[1:])]
    out, ref, t = [np.zeros(rate // 2, np.float32)], [], 0.5
    for k in range(2 * min(len(p) for p in pieces.values())):
        who, gap = pair[k % 2], rng.uniform(0.15, 0.6)
        piece = pieces[who][k // 2]
        out += [piece, np.zeros(int(gap * rate), np.float32)]
        ref.append((who, t, t + len(piece) / rate))
        t += len(piece) / rate + gap
    return np.concatenate(out), ref


def rttm(path: Path) -> list[tuple[str, float, float]]:
    """(speaker, start, end) of every turn of an RTTM file."""
    return [(f[7], float(f[3]), float(f[3]) + float(f[4])) for f in (line.split() for line in open(path))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realspeech", type=Path, default=REALSPEECH,
                    help="folder with pyannote-audio/sample.wav and silero-vad/aepyx_8k.wav (default: ../shared/realspeech)")
    realspeech = ap.parse_args().realspeech
    sample = realspeech / "pyannote-audio"
    import numpy as np
    from synthesize import write_call

    from pipeline.script.align import align_many
    from pipeline.script.checklist import load_checklist
    from pipeline.speech.audio import decode
    from pipeline.speech.transcribe import TranscribeOptions, Transcriber

    tr = Transcriber(TranscribeOptions(language=None, speakers="voice"))
    rows = []
    if not (sample / "sample.rttm").exists():
        print(f"{sample / 'sample.rttm'} not found: pyannote's sample is left out", file=sys.stderr)
    else:
        ref = rttm(sample / "sample.rttm")
        t = time.perf_counter()
        out = tr.transcribe(decode(sample / "sample.wav"))
        hyp = [(u.speaker, u.start, u.end) for u in out.utterances]
        rows.append(("pyannote sample.wav", "test", 30.0, best_der(ref, hyp), None, out.speakers, time.perf_counter() - t))
    aepyx = realspeech / "silero-vad"
    if not (aepyx / "aepyx.rttm").exists():
        print(f"{aepyx / 'aepyx.rttm'} not found: the aepyx pairs are left out", file=sys.stderr)
    else:
        turns, whole = rttm(aepyx / "aepyx.rttm"), decode(aepyx / "aepyx_8k.wav")
        pairs = list(itertools.combinations(sorted({w for w, _, _ in turns}), 2))
        mixes = []  # (row name, mono audio, reference turns)
        for pair in pairs:
            ref = [x for x in turns if x[0] in pair]
            kept = np.zeros_like(whole.channels[0])
            for _, s, e in ref:
                kept[int(s * 16000) : int(e * 16000)] = whole.channels[0][int(s * 16000) : int(e * 16000)]
            mixes.append((f"aepyx {'+'.join(pair)}", kept, ref))
        for seed, pair in enumerate(pairs):
            mix, ref = short_turns(whole.channels[0], turns, pair, seed)
            mixes.append((f"aepyx-short {'+'.join(pair)} ({len(ref)} turns)", mix, ref))
        with tempfile.TemporaryDirectory() as tmp:
            for name, audio, ref in mixes:
                t = time.perf_counter()
                out = tr.transcribe(decode(write_call(Path(tmp) / "mix.wav", audio, 16000)))
                hyp = [(u.speaker, u.start, u.end) for u in out.utterances]
                rows.append((name, "dev", sum(e - s for _, s, e in ref), best_der(ref, hyp), None, out.speakers, time.perf_counter() - t))
    tr_ru, tr_flat = Transcriber(TranscribeOptions(speakers="voice")), Transcriber(TranscribeOptions())
    script = load_checklist(REPO / "checklists" / "appliances-inbound.yaml")
    steps = {(part, way): [0, 0, 0] for part in ("dev", "test") for way in ("split", "one speaker")}  # true, false, missed
    with tempfile.TemporaryDirectory() as tmp:
        for number, meta in enumerate(sorted((REPO / "data" / "demo").glob("call_*.json")), 1):
            call = json.loads(meta.read_text(encoding="utf-8"))
            audio = decode(meta.parent / call["file"])
            mono = write_call(Path(tmp) / f"{meta.stem}.wav", np.sum(audio.channels, axis=0) * 0.7, 16000)
            ref = [(x["speaker"], x["start"], x["end"]) for x in call["turns"]]
            t = time.perf_counter()
            out = tr_ru.transcribe(decode(mono))
            hyp = [(u.speaker, u.start, u.end) for u in out.utterances]
            part = "dev" if number <= 3 else "test"
            rows.append((f"demo mix {meta.stem}", part, audio.duration, best_der(ref, hyp), der(ref, hyp, {}), out.speakers, time.perf_counter() - t))
            done = {x["step"] for x in call["turns"] if x["step"] in script.step_ids}
            for way, transcript in (("split", out), ("one speaker", tr_flat.transcribe(decode(mono)))):
                found = {r.id for r in align_many([transcript], script)[0].steps if r.found}
                for k, n in enumerate((len(found & done), len(found - done), len(done - found))):
                    steps[part, way][k] += n
    from real_speech import voip_rows

    for row in voip_rows():
        t = time.perf_counter()
        out = tr_ru.transcribe(decode(row["path"]))
        hyp = [(u.speaker, u.start, u.end) for u in out.utterances]
        rows.append((row["id"], row["split"], sum(e - s for _, s, e in row["turns"]), best_der(row["turns"], hyp), der(row["turns"], hyp, {}),
                     out.speakers, time.perf_counter() - t))
    print(f"\n{platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}\n")
    print("| file | split | audio s | DER | DER as named | separation | transcribe s (incl. diarization) |\n|---|---|---|---|---|---|---|")
    for name, part, dur, d, named, split, secs in rows:
        sep = f"{split['separation']:.2f}" if split else "one voice"
        print(f"| {name} | {part} | {dur:.0f} | {d:.3f} | {'' if named is None else f'{named:.3f}'} | {sep} | {secs:.1f} |")
    sets = {"aepyx ": "aepyx pairs", "aepyx-short": "aepyx pairs in short turns", "demo": "demo mixes", "voip": "voip dialogues"}
    for what, part in (("aepyx ", "dev"), ("aepyx-short", "dev"), ("demo", "dev"), ("voip", "dev"), ("demo", "test"), ("voip", "test")):
        mixes = [r for r in rows if r[0].startswith(what) and r[1] == part]
        if mixes:
            weight = sum(r[2] for r in mixes)
            named = f"{sum(r[2] * r[4] for r in mixes) / weight:.3f}" if what in ("demo", "voip") else ""
            print(f"| **{sets[what]}, {part}, duration-weighted** | {part} | {weight:.0f} | "
                  f"{sum(r[2] * r[3] for r in mixes) / weight:.3f} | {named} | | |")
    print("\nScript steps found on the mixes (appliances script; the steps of the reference turns):\n")
    print("| split | transcript | precision | recall | F1 |\n|---|---|---|---|---|")
    for (part, way), (tp, fp, fn) in steps.items():
        p, r = tp / max(1, tp + fp), tp / max(1, tp + fn)
        print(f"| {part} | {way} | {p:.3f} | {r:.3f} | {2 * p * r / max(1e-9, p + r):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
