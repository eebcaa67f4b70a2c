"""Packing speech into the windows Whisper decodes: regions of all channels, in
time order, joined with short silences; a piece table maps every packed second
back to its channel and call time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.speech.audio import SAMPLE_RATE
from pipeline.speech.regions import FRAME
from pipeline.speech.thresholds import THRESHOLDS as TH


@dataclass
class Packed:
    audio: np.ndarray
    pieces: list[tuple[float, float, float]]  # (packed start, original start, length) in seconds
    owners: list[int] = field(default_factory=list)  # the stream each piece came from

    def piece_at(self, t: float) -> int:
        """Index of the piece holding packed time ``t`` (in a gap: the nearer piece)."""
        for k, (ps, _, ln) in enumerate(self.pieces):
            if t < ps:
                if k and t - (self.pieces[k - 1][0] + self.pieces[k - 1][2]) < ps - t:
                    return k - 1
                return k
            if t <= ps + ln:
                return k
        return len(self.pieces) - 1

    def to_original(self, t: float, piece: int | None = None) -> float:
        """Packed time -> call time, clamped into ``piece`` (default: the one holding t)."""
        if not self.pieces:
            return t
        ps, os_, ln = self.pieces[self.piece_at(t) if piece is None else piece]
        return os_ + min(max(t - ps, 0.0), ln)

    def span_to_original(self, start: float, end: float) -> tuple[float, float, int]:
        """A word's span in call time, and the stream it came from. Whisper
        stretches words over the short packed gaps (the first word after a gap
        often starts before it): the word belongs to the piece holding its middle."""
        k = self.piece_at((start + end) / 2)
        return self.to_original(start, k), self.to_original(end, k), self.owners[k]


def pack(parts: list[tuple[np.ndarray, float, int]]) -> Packed:
    """Join (audio, original start, owner) parts with short silences."""
    gap = np.zeros(int(TH.pack_gap_s * SAMPLE_RATE), dtype=np.float32)
    chunks, pieces, owners, pos = [], [], [], 0.0
    for k, (a, start, owner) in enumerate(parts):
        if k:
            chunks.append(gap)
            pos += len(gap) / SAMPLE_RATE
        chunks.append(a)
        pieces.append((pos, start, len(a) / SAMPLE_RATE))
        owners.append(owner)
        pos += len(a) / SAMPLE_RATE
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)
    return Packed(audio, pieces, owners)


def cut(x: np.ndarray, s: float, e: float) -> np.ndarray:
    return x[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)]


def pack_regions(channel: np.ndarray, regions: list[tuple[float, float]], owner: int = 0) -> Packed:
    """Cut one channel's speech regions out and join them with short silences."""
    return pack([(cut(channel, s, e), s, owner) for s, e in regions])


def plan_windows(regions: list[tuple[float, float]], db: np.ndarray, length: float = TH.window_s) -> list[list[tuple[float, float]]]:
    """Share a channel's speech regions, in time order, out into windows of at
    most ``length`` seconds of packed audio: (start, end) pieces. A region that
    does not fit the room left is split at its quietest frame if that frame is
    near the noise floor (between words), else it opens the next window; a
    region longer than a window is split regardless. Where the pauses are
    digital silence (a VoIP recorder's silence suppression), all are equally
    good cuts, and the first that fills the window to ``window_fill`` is
    taken: every window costs a whole 30 s encoding, and the first
    pause had made a window of every turn (docs/benchmarks.md, "Windows as full
    as the pauses allow")."""
    fs = FRAME / SAMPLE_RATE
    floor = float(np.percentile(db, 10)) if db.size else -100.0
    windows: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    used = 0.0
    for s, e in sorted(regions):
        while True:
            gap = TH.pack_gap_s if cur else 0.0
            if used + gap + (e - s) <= length:
                cur.append((s, e))
                used += gap + e - s
                break
            room = length - used - gap
            cut = None
            if room >= 2.0:
                lo, hi = int((s + 1.0) / fs), int((s + room) / fs)
                if hi > lo and hi <= db.size:
                    j = lo + int(np.argmin(db[lo:hi]))
                    need = s + TH.window_fill * length - used - gap
                    if db[j] < TH.digital_silence_dbfs and (j + 0.5) * fs < need:  # the first of many equal pauses
                        ties = lo + np.flatnonzero(db[lo:hi] < TH.digital_silence_dbfs)
                        j = next((int(t) for t in ties if (t + 0.5) * fs >= need), j)
                    if db[j] < floor + TH.split_db or e - s > length:
                        cut = round((j + 0.5) * fs, 3)
            if cut is None and not cur:
                cut = s + length  # longer than a window and no quiet frame in reach
            if cut is not None:
                cur.append((s, cut))
                s = cut
            windows.append(cur)
            cur, used = [], 0.0
    if cur:
        windows.append(cur)
    return windows


def packed_length(pieces: list[tuple[float, float, int]]) -> float:
    """Seconds of packed audio that (start, end, stream) pieces make, gaps included."""
    return sum(e - s for s, e, _ in pieces) + TH.pack_gap_s * max(0, len(pieces) - 1)


def share_windows(windows: list[list[tuple[float, float, int]]], length: float = TH.window_s) -> list[list[tuple[float, float, int]]]:
    """Windows of (start, end, stream) pieces, those of different streams put
    together where they fit in ``length`` (first fit, longest first). Every
    window costs a whole 30 s encoding, however short, and each channel's
    last window mostly is short: the demo calls' 13 windows become 10."""
    out: list[list[tuple[float, float, int]]] = []
    for w in sorted(windows, key=packed_length, reverse=True):
        streams = {k for _, _, k in w}
        for o in out:
            if not streams & {k for _, _, k in o} and packed_length(o + w) <= length:
                o[:] = sorted(o + w)
                break
        else:
            out.append(list(w))
    return out
