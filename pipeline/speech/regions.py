"""Finding speech in a channel: Silero VAD at a low threshold, or energy above
the noise floor that is not the other channel leaking in. Thresholds measured
on the demo calls (docs/benchmarks.md)."""

from __future__ import annotations

import threading

import numpy as np

from pipeline.speech.audio import SAMPLE_RATE
from pipeline.speech.thresholds import THRESHOLDS as TH

FRAME = 512  # Silero's window at 16 kHz (32 ms)


def frame_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = x[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    return (10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)).astype(np.float32)


_vad_lock = threading.Lock()
_vad_model = None


def vad_probs(x: np.ndarray) -> np.ndarray:
    global _vad_model
    from faster_whisper.vad import get_vad_model

    with _vad_lock:
        if _vad_model is None:
            _vad_model = get_vad_model()
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    # a copy: faster-whisper's Silero wrapper writes zeros into the audio it is given
    return np.asarray(_vad_model(np.array(x[: n * FRAME], dtype=np.float32)), dtype=np.float32).reshape(-1)[:n]


def speech_regions(channel: np.ndarray, db: np.ndarray, other_db: np.ndarray | None = None, vad_threshold: float = TH.vad,
                   probs: np.ndarray | None = None) -> list[tuple[float, float]]:
    """Seconds (start, end) where a channel holds speech: Silero VAD at a low
    threshold (``probs``, its per-frame probabilities, computed when not given),
    or energy well above the channel's noise floor (``db``, its frame levels)
    that is not the other channel (``other_db``) leaking in. Padded, and merged
    when close."""
    if db.size == 0:
        return []
    probs = (vad_probs(channel) if probs is None else probs)[: db.size]
    floor = float(np.percentile(db, 10))
    # Digital silence or a near-silent line: nothing can be speech below -60 dBFS.
    loud = db > max(floor + TH.energy_margin_db, TH.silent_dbfs)
    if other_db is not None and other_db.size >= db.size:
        loud &= ~(other_db[: db.size] > db + TH.crosstalk_db)
    speech = (probs >= vad_threshold) & (db > TH.vad_floor_dbfs) | loud
    fs = FRAME / SAMPLE_RATE
    regions: list[list[float]] = []
    i, n = 0, speech.size
    while i < n:
        if not speech[i]:
            i += 1
            continue
        j = i
        while j < n and speech[j]:
            j += 1
        if (j - i) * fs >= TH.min_region_s and (probs[i:j].max() >= vad_threshold or (j - i) * fs >= TH.min_loud_region_s):
            regions.append([i * fs, j * fs])
        i = j
    total = len(channel) / SAMPLE_RATE
    merged: list[list[float]] = []
    for s, e in regions:
        s, e = max(0.0, s - TH.region_pad_s), min(total, e + TH.region_pad_s)
        if merged and s - merged[-1][1] < TH.merge_gap_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(round(s, 3), round(e, 3)) for s, e in merged]


def snap_start(word_start: float, db: np.ndarray, floor: float) -> float:
    """Whisper's first word of a turn often starts a few hundred ms off; the
    signal's own onset is more exact. Walk from the word to the start of the
    loud run it sits in (short dips allowed), at most 1 s back or 0.6 s on."""
    fs = FRAME / SAMPLE_RATE
    loud = db > floor + TH.onset_db
    k = min(int(word_start / fs), loud.size - 1)
    if k < 0:
        return word_start
    if not loud[k]:
        ahead = np.nonzero(loud[k : k + int(0.6 / fs)])[0]
        if ahead.size == 0:
            return word_start
        k += int(ahead[0])
    lo = max(0, k - int(1.0 / fs))
    i = k
    while i > lo:
        base = max(lo, i - 4)  # tolerate dips up to ~100 ms
        hits = np.nonzero(loud[base:i])[0]
        if hits.size == 0:
            break
        i = base + int(hits[-1])
    return round(i * fs, 3)
