"""Where Whisper base spends its time on this CPU: the measurements behind the
window design of pipeline/speech/transcribe.py (docs/benchmarks.md, "Transcription").

Run by hand (not a test; about a minute on 2 cores):

    .venv/bin/python benchmarks/whisper_cost.py

1. The encoder's cost per window by input length and batch size, one thread:
   attention grows with the square of the input, and a batch spills the caches.
2. Greedy decoding of 12 windows: two one-thread batches at once against one
   two-thread batch.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import ctranslate2
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    from pipeline.config import Settings
    from pipeline.speech.models import resolve_model

    path = str(resolve_model("base", Settings().model_cache).path)
    one = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1, num_workers=2)
    rng = np.random.default_rng(0)
    print("| encoder input | batch | seconds per window (1 thread) | per second of audio |")
    print("|---|---|---|---|")
    for frames in (1000, 1500, 2000, 3000):
        for batch in (1, 4):
            x = ctranslate2.StorageView.from_array((rng.standard_normal((batch, 80, frames)) * 0.1).astype(np.float32))
            one.model.encode(x)
            t = time.perf_counter()
            one.model.encode(x)
            per = (time.perf_counter() - t) / batch
            print(f"| {frames // 100} s | {batch} | {per:.3f} | {per / (frames / 100):.4f} |", flush=True)

    tok = Tokenizer(one.hf_tokenizer, True, task="transcribe", language="ru")
    demo = Path(__file__).resolve().parent.parent / "data" / "demo" / "call_01_laptop_gift.m4a"
    from pipeline.speech.audio import decode

    feats = one.feature_extractor(decode(demo).channels[0][: 16000 * 20])[:, :2000]
    enc = np.asarray(one.model.encode(ctranslate2.StorageView.from_array(feats[None].astype(np.float32)), to_cpu=True))
    states = np.concatenate([enc] * 12)
    prompt = tok.sot_sequence + [tok.no_timestamps]

    def gen(model, part):
        return model.model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(part)), [prompt] * len(part), beam_size=1, max_length=176)

    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda h: gen(one, states[h::2]), range(2)))
    two_single = time.perf_counter() - t
    both = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=2)
    t = time.perf_counter()
    gen(both, states)
    print(f"\ngreedy decoding of 12 windows of 20 s: two 1-thread batches of 6 at once {two_single:.2f} s, one 2-thread batch of 12 {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
