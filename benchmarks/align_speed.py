"""Alignment throughput: N calls of about 30 utterances each, aligned with
``align_many`` in W processes (each loads the sentence models once).

Calls are assembled from the labelled dialogues' turns, each sentence made
unique (a name and a number prepended), so the per-text cache cannot help:
this is the worst case, every sentence embedded once.

    python benchmarks/align_speed.py                 # 1000 calls, 2 processes
    python benchmarks/align_speed.py --calls 200 --workers 1 --models use+e5+tfidf
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

NAMES = ["Анна", "Иван", "Ольга", "Пётр", "Мария", "Сергей", "Елена", "Дмитрий", "Наталья", "Алексей"]


def make_calls(n: int, utterances: int = 30, seed: int = 0) -> list:
    from align_eval import load_dialogues

    from pipeline.speech.transcript import Transcript, Utterance

    rng = random.Random(seed)
    pool = [d for d in load_dialogues("all") if d.checklist_id == "appliances-inbound"]
    calls = []
    for c in range(n):
        turns = []
        while len(turns) < utterances:
            turns.extend(rng.choice(pool).transcript.utterances)
        utts, t = [], 0.0
        for j, u in enumerate(turns[:utterances]):
            text = f"{rng.choice(NAMES)}, {c * 100 + j}. {u.text}"
            utts.append(Utterance(u.speaker, t, t + (u.end - u.start), text))
            t += u.end - u.start + 0.4
        calls.append(Transcript(utts, t, "ru", "bench"))
    return calls


def _work(args) -> tuple[int, float, float]:
    calls, models, threads = args
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    from pipeline.script.align import align_many
    from pipeline.script.checklist import load_checklist
    from pipeline.script.embed import get_scorer

    started = time.perf_counter()
    scorer = get_scorer(models, threads=threads)
    checklist = load_checklist(ROOT / "checklists" / "appliances-inbound.yaml")
    scorer.space(checklist)
    loaded = time.perf_counter()
    out = []
    for i in range(0, len(calls), 50):  # 50 calls per scoring batch keeps memory flat
        out.extend(align_many(calls[i : i + 50], checklist, scorer))
    return len(out), loaded - started, time.perf_counter() - loaded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--utterances", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--models", default="use+tfidf")
    args = ap.parse_args()

    calls = make_calls(args.calls, args.utterances)
    n_utts = sum(len(c.utterances) for c in calls)
    n_ops = sum(u.speaker == "operator" for c in calls for u in c.utterances)
    chunks = [calls[i :: args.workers] for i in range(args.workers)]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_work, [(chunk, args.models, 1) for chunk in chunks]))
    wall = time.perf_counter() - started
    load = max(r[1] for r in results)
    work = max(r[2] for r in results)
    print(f"{args.calls} calls, {n_utts} utterances ({n_ops} operator), scorer {args.models}, "
          f"{args.workers} process(es), {os.cpu_count()} CPUs")
    print(f"wall {wall:.1f} s (model loading {load:.1f} s, aligning {work:.1f} s): "
          f"{n_utts / wall:.0f} utterances/s overall, {args.calls / wall:.1f} calls/s")


if __name__ == "__main__":
    main()
