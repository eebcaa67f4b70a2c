"""Finding speech in a channel: Silero VAD at a low threshold, or energy above
the noise floor that is not the other channel leaking in. Thresholds measured
on the demo calls (docs/benchmarks.md)."""

from __future__ import annotations

import threading

import numpy as np
from scipy.ndimage import binary_dilation, binary_opening

from pipeline.speech.audio import SAMPLE_RATE, channel_correlation
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


def echo_masks(db_a: np.ndarray, db_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For two channels' frame levels, the frames of each that are the other
    channel's echo, not its own speech: line echo and crosstalk, a delayed,
    attenuated copy that Silero rightly calls speech. Each echo path
    (``_echo_path``) is measured once and serves both channels.

    While the other side speaks (and shortly after), a frame is a channel's
    own only when it is louder than the echo model predicts, or no quieter
    than its source, and above its own noise floor; so a real answer spoken
    over the other side, or two channels carrying the same signal, are never
    taken for echo, and Silero's probability lingering after an echo does not
    make the silence speech. The source must be the other side's own speech,
    not the echo of this one (which, delayed twice, would mask this channel's
    own soft sounds), and a lone echo-like frame inside speech is not echo.
    Without echo the loss found is the channel's noise floor, and only
    silence is marked."""
    n = min(db_a.size, db_b.size)
    a, b = db_a[:n].astype(np.float64), db_b[:n].astype(np.float64)
    b_in_a, a_in_b = _echo_path(a, b), _echo_path(b, a)

    def mask(size: int, mine: np.ndarray, theirs: np.ndarray, path, back) -> np.ndarray:
        out = np.zeros(size, dtype=bool)
        if path is None:
            return out
        ours = _echoed(theirs, mine, *back) if back else np.zeros(n, dtype=bool)
        out[:n] = _echoed(mine, theirs, *path, not_source=ours)
        return binary_opening(out, structure=np.ones(TH.echo_min_frames_run, dtype=bool))

    return mask(db_a.size, a, b, b_in_a, a_in_b), mask(db_b.size, b, a, a_in_b, b_in_a)


def _echo_path(b: np.ndarray, a: np.ndarray) -> tuple[int, float] | None:
    """Delay (frames) and loss (dB) of ``a``'s echo in ``b``: the lag at which
    ``b``'s level follows ``a``'s most closely while ``a`` speaks, and the
    median level difference there. None when ``a`` says too little to tell, or
    when its echo does not rise above ``b``'s noise floor (no echo to remove)."""
    n = a.size
    active = _active(a)
    if active.sum() < TH.echo_min_frames:
        return None
    fb = float(np.percentile(b, 10))
    bc = np.maximum(b, fb + TH.echo_floor_db)  # level changes in the noise are not a signal

    def follows(k: int) -> float:
        on = active[: n - k]
        return channel_correlation(a[: n - k][on], bc[k:][on], step=1)

    lag = max(range(min(int(TH.echo_max_lag_s * SAMPLE_RATE / FRAME), n - 2) + 1), key=follows)
    on = active[: n - lag]
    if float(np.median(b[lag:][on])) < fb + TH.echo_present_db:
        return None
    return lag, float(np.median(b[lag:][on] - a[: n - lag][on]))


def _active(x: np.ndarray) -> np.ndarray:
    return x > float(np.percentile(x, 10)) + TH.energy_margin_db


def _echoed(b: np.ndarray, a: np.ndarray, lag: int, loss: float, not_source: np.ndarray | None = None) -> np.ndarray:
    """Frames of ``b``, near ``a``'s speech, that ``a``'s echo explains."""
    n = b.size
    source = np.full(n, -np.inf)
    source[lag:] = a[: n - lag]
    speaking = np.zeros(n, dtype=bool)
    speaking[lag:] = _active(a)[: n - lag] & (~not_source[: n - lag] if not_source is not None else True)
    source[~speaking] = -np.inf
    edge = np.full(1, -np.inf)
    source = np.maximum.reduce([source, np.concatenate([edge, source[:-1]]), np.concatenate([source[1:], edge])])  # the delay is not a whole number of frames
    near = binary_dilation(speaking, iterations=TH.echo_min_frames_run)
    own = ((b > source + loss + TH.echo_margin_db) | (b > source - TH.echo_below_db)) & (b > float(np.percentile(b, 10)) + TH.echo_floor_db)
    return near & ~own


def speech_regions(channel: np.ndarray, db: np.ndarray, echo: np.ndarray | None = None, vad_threshold: float = TH.vad,
                   probs: np.ndarray | None = None) -> list[tuple[float, float]]:
    """Seconds (start, end) where a channel holds speech: Silero VAD at a low
    threshold (``probs``, its per-frame probabilities, computed when not given),
    or energy well above the channel's noise floor (``db``, its frame levels),
    but not the other channel leaking in (``echo``, from ``echo_masks``).
    Padded, and merged when close."""
    if db.size == 0:
        return []
    probs = (vad_probs(channel) if probs is None else probs)[: db.size]
    speech = _speech_frames(db, echo, vad_threshold, probs)
    fs = FRAME / SAMPLE_RATE
    regions: list[list[float]] = []
    joined = joined_runs(speech, TH.region_join_s)
    for (i, j), alone in zip(joined, _amid_digital_silence(joined, db)):
        spoken = int(speech[i:j].sum()) * fs  # the dips inside a run do not count towards its length
        if spoken >= TH.min_region_s and (probs[i:j].max() >= vad_threshold or spoken >= _loud_enough(alone)):
            regions.append([float(i * fs), float(j * fs)])
    total = len(channel) / SAMPLE_RATE
    merged: list[list[float]] = []
    for s, e in regions:
        s, e = max(0.0, s - TH.region_pad_s), min(total, e + TH.region_pad_s)
        if merged and s - merged[-1][1] < TH.merge_gap_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(round(s, 3), round(e, 3)) for s, e in merged]


def _loud_frames(db: np.ndarray) -> np.ndarray:
    """Which frames are speech by energy: well above the channel's noise floor;
    at digital silence or on a near-silent line, above -60 dBFS."""
    return db > max(float(np.percentile(db, 10)) + TH.energy_margin_db, TH.silent_dbfs)


def _speech_frames(db: np.ndarray, echo: np.ndarray | None, vad_threshold: float, probs: np.ndarray) -> np.ndarray:
    """Which frames hold speech: Silero's probability or energy, less the other channel's echo."""
    speech = (probs >= vad_threshold) & (db > TH.vad_floor_dbfs) | _loud_frames(db)
    if echo is not None:
        speech &= ~echo[: speech.size]
    return speech


def speech_runs(db: np.ndarray, probs: np.ndarray, echo: np.ndarray | None = None, vad_threshold: float = TH.vad) -> list[tuple[float, float]]:
    """Seconds (start, end) of each run of speech between pauses of
    ``run_pause_s`` or more that lasts ``run_min_s`` or more (``min_burst_s``
    between pauses of digital silence) and that Silero vouches for
    (``speech_evidence``) or that is loud as long as a region found by energy
    alone must be: a phrase or a short reply. A region holds
    many; coverage asks for a word in each, since a reply between two turns
    lies within ``heard_reach_s`` of their words."""
    if db.size == 0:
        return []
    probs = probs[: db.size]
    fs = FRAME / SAMPLE_RATE
    speech = _speech_frames(db, echo, vad_threshold, probs)
    loud = speech & _loud_frames(db)
    runs = joined_runs(speech, TH.run_pause_s)
    return [(round(float(a * fs), 3), round(float(b * fs), 3)) for (a, b), alone in zip(runs, _amid_digital_silence(runs, db))
            if (b - a) * fs >= min(TH.run_min_s, _loud_enough(alone))
            and (probs[a:b].max() >= TH.speech_evidence or loud[a:b].sum() * fs >= _loud_enough(alone))]


def _amid_digital_silence(runs: list[tuple[int, int]], db: np.ndarray) -> list[bool]:
    """For each run of frames (sorted), whether the pauses on both sides of it
    hold digital silence: a VoIP line with silence suppression sends nothing
    but what the far end took for speech, so such a burst is no line noise."""
    silent = np.r_[0, np.cumsum(db < TH.digital_silence_dbfs)]
    bounds = [0, *(x for run in runs for x in run), db.size]
    return [bool(silent[a] > silent[p]) and bool(silent[n] > silent[b]) for (a, b), p, n in zip(runs, bounds[0::2], bounds[3::2])]


def digital_pauses(db: np.ndarray) -> list[tuple[float, float]]:
    """Seconds (start, end) of each pause of digital silence of ``run_pause_s``
    or more: a VoIP line sent nothing there, so no word was spoken across one."""
    fs = FRAME / SAMPLE_RATE
    return [(round(float(a * fs), 3), round(float(b * fs), 3)) for a, b in joined_runs(db < TH.digital_silence_dbfs, 0.0)
            if (b - a) * fs >= TH.run_pause_s]


def between_pauses(start: float, end: float, pauses: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """``start``-``end`` cut at each pause (sorted ``digital_pauses``) that lies
    wholly inside it, the pauses left out: on a VoIP line each part is a turn,
    or a piece of one, of its own. Parts shorter than ``min_region_s`` are
    clicks at the edges and are dropped."""
    parts, cursor = [], start
    for a, b in pauses:
        if a >= end:
            break
        if a > cursor and b < end:
            parts.append((cursor, a))
            cursor = b
    parts.append((cursor, end))
    return [(a, b) for a, b in parts if b - a >= TH.min_region_s]


def _loud_enough(amid_digital_silence: bool) -> float:
    """Seconds of loud frames a run Silero does not vouch for needs to be speech."""
    return TH.min_burst_s if amid_digital_silence else TH.min_loud_region_s


def joined_runs(active: np.ndarray, pause_s: float) -> list[tuple[int, int]]:
    """Frame indexes (start, end) of the runs of ``active`` frames, runs parted
    by fewer than ``pause_s`` seconds of inactive frames joined into one."""
    fs = FRAME / SAMPLE_RATE
    edges = np.diff(np.r_[0, active.astype(np.int8), 0])
    runs: list[list[int]] = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if runs and (a - runs[-1][1]) * fs < pause_s:
            runs[-1][1] = b
        else:
            runs.append([a, b])
    return [(a, b) for a, b in runs]


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
