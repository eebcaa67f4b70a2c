"""Echo and crosstalk on two-line calls: is one speaker's speech heard twice?

    .venv/bin/python benchmarks/echo.py [--split dev|test|all] [--gains-db -30,-20,-15,-10] [--delays-ms 20,200]

On a real two-line recording each channel carries a faint copy of the other
one's speech: line (hybrid) echo, headset crosstalk. No real call with a known
answer is at hand, so the demo calls (operator left, client right) get it
added: each channel receives the other's signal band-limited to the telephone
band (300-3400 Hz), delayed and attenuated by the given gain, both ways at
once. Calls 1-3 are the dev split, 4-6 the test split (as in real_speech.py).

Per condition: the words heard on the wrong channel ("echo words": a word on a
speaker's channel whose middle lies inside the other speaker's reference turn
and outside every turn of its own, 0.3 s of slack), as a share of the
reference words, and the WER of each channel against its own speaker's
reference turns (an echo transcribed twice shows up as insertions there).
Prints Markdown; not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SLACK_S = 0.3


def echo_words(transcript, turns: list[dict]) -> int:
    def inside(t: float, who: str) -> bool:
        return any(x["start"] - SLACK_S <= t <= x["end"] + SLACK_S for x in turns if x["speaker"] == who)

    other = {"operator": "client", "client": "operator"}
    return sum(
        1
        for u in transcript.utterances
        for w in u.words
        if inside((w.start + w.end) / 2, other[u.speaker]) and not inside((w.start + w.end) / 2, u.speaker)
    )


def main() -> int:
    import jiwer
    from real_speech import norm
    from synthesize import line_echo

    from pipeline.speech.audio import SAMPLE_RATE, decode
    from pipeline.speech.transcribe import TranscribeOptions, Transcriber

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=["dev", "test", "all"], default="test")
    ap.add_argument("--gains-db", default="-30,-20,-15,-10", help="echo levels, dB relative to the speaker's own channel")
    ap.add_argument("--delays-ms", default="20,200", help="echo delays: a hybrid's (tens of ms) and a network's (hundreds)")
    args = ap.parse_args()
    calls = sorted((REPO / "data" / "demo").glob("call_*.json"))
    calls = [c for i, c in enumerate(calls, 1) if args.split == "all" or (args.split == "dev") == (i <= 3)]
    conditions = [(None, 0.0)] + [(float(g), float(d)) for g in args.gains_db.split(",") for d in args.delays_ms.split(",")]
    tr = Transcriber(TranscribeOptions())
    metas = [json.loads(m.read_text(encoding="utf-8")) for m in calls]
    decoded = [(call, decode(m.parent / call["file"])) for m, call in zip(calls, metas)]
    print(f"\n{platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}; split {args.split}: {', '.join(m.stem for m in calls)}\n")
    print("| echo | delay ms | echo words / reference words | operator WER | client WER |\n|---|---|---|---|---|")
    for gain, delay in conditions:
        leaked = ref_words = 0
        hyps, refs = {"operator": [], "client": []}, {"operator": [], "client": []}
        for call, audio in decoded:
            out = tr.transcribe(dataclasses.replace(audio, channels=audio.channels if gain is None else line_echo(audio.channels, SAMPLE_RATE, gain, delay)))
            leaked += echo_words(out, call["turns"])
            for who in hyps:
                refs[who].append(norm(" ".join(t["text"] for t in call["turns"] if t["speaker"] == who), "ru"))
                hyps[who].append(norm(" ".join(u.text for u in out.utterances if u.speaker == who), "ru"))
            ref_words += sum(len(norm(t["text"], "ru").split()) for t in call["turns"])
        wer = {who: jiwer.wer(refs[who], hyps[who]) for who in hyps}
        name = "none" if gain is None else f"{gain:+.0f} dB"
        print(f"| {name} | {'' if gain is None else f'{delay:.0f}'} | {leaked} / {ref_words} ({leaked / ref_words:.3f}) | {wer['operator']:.3f} | {wer['client']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
