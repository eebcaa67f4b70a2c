"""Turns lost, and turns lost without a warning, on mono calls of short turns.

    .venv/bin/python benchmarks/lost_turns.py --split dev --seeds 1,2

WER pools a set's words, so a short reply that vanishes ("Тысяч тридцать.")
hardly moves it; this counts turns. The calls are benchmarks/real_speech.py's
``voip`` set (the labelled dialogues as one mono mix, 0.15-0.6 s of digital
silence between turns) drawn again with other ``--seeds`` for the pauses:
seed 0 is the voip set itself, whose files were seen while tuning; or, with
``--set aligneval-voip``, the calls of ../shared/aligneval the same way
(dialogues written by people who never saw our code; kinds split dev/test).
``--set dialogues`` and ``--set aligneval`` are the same dialogues as
two-line calls (operator left, client right), each turn looked for in its
speaker's words.

For each reference turn: **lost** when no recognised word has its middle
within 0.2 s of the turn, **lost silently** when callreview's coverage does
not list any unheard speech overlapping it either (a lost turn that is listed
is one the listener is sent to). fw-batched (BatchedInferencePipeline, beam 5,
batch 8, its default VAD, word timestamps on) is the peer, and has no
coverage: each turn it loses, it loses silently. Tune on ``dev``, report
``test``. Prints Markdown; not a test.
"""

from __future__ import annotations

import argparse
import bisect
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "data"), str(REPO / "benchmarks")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REACH_S = 0.2  # a word this near a turn is of that turn (Whisper's word times drift by about this)


def lost(turns: list[tuple[str, float, float]], words: list[tuple[float, float, str]], two_line: bool = False) -> list[int]:
    """Indexes of the turns (speaker, start, end) no word (start, end, speaker)
    has its middle near; on a two-line call, no word of the turn's speaker."""
    mids = {who: sorted((a + b) / 2 for a, b, w in words if not two_line or w == who) for who in {t[0] for t in turns}}
    return [k for k, (who, s, e) in enumerate(turns) if bisect.bisect_left(mids[who], s - REACH_S) == bisect.bisect_right(mids[who], e + REACH_S)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test", choices=["dev", "test"], help="tune on dev, report on test")
    ap.add_argument("--seeds", default="1,2", help="comma-separated draws of the pauses (0: the voip set itself)")
    ap.add_argument("--set", default="voip", choices=["voip", "aligneval-voip", "dialogues", "aligneval"],
                    help="whose dialogues (ours or ../shared/aligneval's), as mono VoIP mixes or as two-line calls")
    ap.add_argument("--engines", default="fw-batched,callreview", help="fw-batched, callreview or both")
    args = ap.parse_args()
    from real_speech import dialogue_rows, voip_rows

    from pipeline.config import Settings
    from pipeline.speech.audio import decode
    from pipeline.speech.transcribe import TranscribeOptions, Transcriber

    source = "aligneval" if args.set.startswith("aligneval") else "own"
    make = voip_rows if args.set.endswith("voip") else dialogue_rows
    rows = [r for seed in map(int, args.seeds.split(",")) for r in make(source=source, seed=seed) if r["split"] == args.split]
    engines = args.engines.split(",")
    tr = Transcriber(TranscribeOptions()) if "callreview" in engines else None
    if "fw-batched" in engines:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        from pipeline.speech.models import resolve_model

        batched = BatchedInferencePipeline(WhisperModel(str(resolve_model("base", Settings().model_cache).path), device="cpu", compute_type="int8"))
    totals = {e: [0, 0, 0] for e in engines}  # turns, lost, lost silently
    examples: list[str] = []
    for i, row in enumerate(rows, 1):
        print(f"[{i}/{len(rows)}] {row['path']}", file=sys.stderr, flush=True)
        audio = decode(row["path"])
        for engine in engines:
            if engine == "callreview":
                t = tr.transcribe(audio)
                words = [(w.start, w.end, u.speaker) for u in t.utterances for w in u.words]
                listed = [(u.start, u.end, audio.speakers[u.channel]) for u in t.coverage.unheard] if t.coverage else []
            else:
                words, listed = [], []
                for channel, speaker in zip(audio.channels, audio.speakers):  # each line on its own, as a user would
                    segs, _ = batched.transcribe(channel, language="ru", beam_size=5, batch_size=8, word_timestamps=True)
                    words += [(w.start, w.end, speaker) for s in segs for w in (s.words or [])]
            two_line = len(audio.channels) == 2
            gone = lost(row["turns"], words, two_line)
            silent = [k for k in gone if not any(a < row["turns"][k][2] + REACH_S and b > row["turns"][k][1] - REACH_S
                                                 and (who == row["turns"][k][0] or not two_line) for a, b, who in listed)]
            totals[engine][0] += len(row["turns"])
            totals[engine][1] += len(gone)
            totals[engine][2] += len(silent)
            examples += [f"{engine}, `{Path(row['path']).parent.name}/{row['id']}` at {row['turns'][k][1]:.1f} s: «{row['texts'][k]}»"
                         + ("" if k in silent else " (listed as unheard)") for k in gone]
    print(f"\n{len(rows)} calls of {args.set}, split {args.split}, seeds {args.seeds}; {platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}\n")
    print("| engine | turns | lost | lost silently |\n|---|---|---|---|")
    for engine, (n, gone, silent) in totals.items():
        print(f"| {engine} | {n} | {gone} | {silent} |")
    print("\n" + "\n".join(f"- {x}" for x in examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
