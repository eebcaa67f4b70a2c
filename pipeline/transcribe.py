"""Speech to text: each channel of a call apart, speaker turns merged by time.

Why it is fast (see docs/benchmarks.md): on split-channel calls each side is
mostly silence, so only the speech regions of a channel are decoded, packed
into one compact stream (long silences shrunk to a short gap, times mapped
back); and the two channels run at once in two threads, each CTranslate2 call
on one core (CTranslate2 releases the GIL, one core per call scales better
than two cores per call).

Why it does not invent text: a channel with no speech is never decoded;
segments that look like Whisper hallucinations (high no-speech probability
with low confidence, high compression ratio, repeated phrases, the well-known
subtitle credits) are dropped.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, DecodedAudio
from .config import available_cores, get_settings
from .errors import ModelError
from .models import ResolvedModel, load_openai_checkpoint, resolve_model
from .transcript import Transcript, Utterance, Word

log = logging.getLogger(__name__)

# --- tunables (measured on the synthetic demo calls; see docs/benchmarks.md) --
VAD_THRESHOLD = 0.2  # Silero's 0.5 default dropped much quiet speech on split channels
ENERGY_MARGIN_DB = 15.0  # a frame this far above the channel's noise floor counts as speech
CROSSTALK_DB = 20.0  # ...unless the other channel is this much louder at that moment (echo)
MIN_REGION_S = 0.12  # shorter blips are clicks, not words
REGION_PAD_S = 0.25  # context kept around each speech region
MERGE_GAP_S = 0.6  # regions closer than this are decoded as one piece
PACK_GAP_S = 0.3  # silence left between packed pieces
TURN_PAUSE_S = 0.8  # a pause this long between words starts a new utterance
FRAME = 512  # Silero's window at 16 kHz (32 ms)

_HALLUCINATIONS = re.compile(
    r"продолжение следует|субтитр|редактор\w* субтитров|корректор|спасибо за просмотр|"
    r"подпис\w+ на (наш )?канал|ставьте лайк|dimatorzok|amara\.org|синецкая|егорова",
    re.IGNORECASE,
)


@dataclass
class TranscribeOptions:
    engine: str = "faster-whisper"  # or "openai-whisper"
    model: str = "base"
    language: str | None = "ru"  # None or "auto": detect per channel
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0  # 0: all cores, shared out between the channels
    beam_size: int = 5
    allow_download: bool = False
    model_cache: str | None = None
    vad_threshold: float = VAD_THRESHOLD

    @classmethod
    def from_settings(cls, settings: Any) -> "TranscribeOptions":
        return cls(
            engine=settings.engine,
            model=settings.model,
            language=settings.language,
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            beam_size=settings.beam_size,
            allow_download=settings.allow_download,
            model_cache=str(settings.model_cache),
        )

    def key(self) -> tuple:
        return (self.engine, self.model, self.device, self.compute_type, self.cpu_threads, self.allow_download, self.model_cache)


# --- finding speech ------------------------------------------------------------


def _frame_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = x[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    return (10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)).astype(np.float32)


_vad_lock = threading.Lock()
_vad_model = None


def _vad_probs(x: np.ndarray) -> np.ndarray:
    global _vad_model
    from faster_whisper.vad import get_vad_model

    with _vad_lock:
        if _vad_model is None:
            _vad_model = get_vad_model()
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    return np.asarray(_vad_model(np.ascontiguousarray(x[: n * FRAME], dtype=np.float32)), dtype=np.float32).reshape(-1)[:n]


def speech_regions(channel: np.ndarray, other: np.ndarray | None = None, vad_threshold: float = VAD_THRESHOLD) -> list[tuple[float, float]]:
    """Seconds (start, end) where a channel holds speech: Silero VAD at a low
    threshold, or energy well above the channel's noise floor that is not the
    other channel leaking in. Padded, and merged when close."""
    db = _frame_db(channel)
    if db.size == 0:
        return []
    probs = _vad_probs(channel)[: db.size]
    floor = float(np.percentile(db, 10))
    # Digital silence or a near-silent line: nothing can be speech below -60 dBFS.
    loud = (db > max(floor + ENERGY_MARGIN_DB, -60.0))
    if other is not None and len(other) >= len(channel):
        odb = _frame_db(other)[: db.size]
        loud &= ~(odb > db + CROSSTALK_DB)
    speech = (probs >= vad_threshold) & (db > -65.0) | loud
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
        if (j - i) * fs >= MIN_REGION_S and (probs[i:j].max() >= vad_threshold or (j - i) * fs >= 0.3):
            regions.append([i * fs, j * fs])
        i = j
    total = len(channel) / SAMPLE_RATE
    merged: list[list[float]] = []
    for s, e in regions:
        s, e = max(0.0, s - REGION_PAD_S), min(total, e + REGION_PAD_S)
        if merged and s - merged[-1][1] < MERGE_GAP_S:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(round(s, 3), round(e, 3)) for s, e in merged]


@dataclass
class _Packed:
    audio: np.ndarray
    pieces: list[tuple[float, float, float]]  # (packed start, original start, length) in seconds

    def _piece(self, t: float) -> int:
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
        ps, os_, ln = self.pieces[self._piece(t) if piece is None else piece]
        return os_ + min(max(t - ps, 0.0), ln)

    def span_to_original(self, start: float, end: float) -> tuple[float, float]:
        """A word's span in call time. Whisper stretches words over the short packed
        gaps (the first word after a gap often starts before it): the word belongs
        to the piece holding its middle."""
        k = self._piece((start + end) / 2)
        return self.to_original(start, k), self.to_original(end, k)


def pack_regions(channel: np.ndarray, regions: list[tuple[float, float]]) -> _Packed:
    """Cut the speech regions out and join them with short silences."""
    gap = np.zeros(int(PACK_GAP_S * SAMPLE_RATE), dtype=np.float32)
    parts, pieces, pos = [], [], 0.0
    for k, (s, e) in enumerate(regions):
        a = channel[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)]
        if k:
            parts.append(gap)
            pos += len(gap) / SAMPLE_RATE
        parts.append(a)
        pieces.append((pos, s, len(a) / SAMPLE_RATE))
        pos += len(a) / SAMPLE_RATE
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)
    return _Packed(audio, pieces)


# --- segments, filters, turns ------------------------------------------------------


@dataclass
class _Seg:
    start: float
    end: float
    text: str
    words: list[Word]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


def _compression_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return len(b) / max(1, len(zlib.compress(b)))


def _is_hallucination(seg: _Seg) -> str | None:
    text = seg.text.strip()
    if not text or not seg.words:
        return "empty"
    if _HALLUCINATIONS.search(text):
        return "known phrase"
    if seg.compression_ratio > 2.4:
        return "repetitive"
    if seg.no_speech_prob > 0.5 and seg.avg_logprob < -0.8:
        return "no speech"
    if seg.avg_logprob < -1.3:
        return "low confidence"
    probs = [w.probability for w in seg.words]
    if len(probs) >= 3 and float(np.mean(probs)) < 0.25:
        return "low word confidence"
    return None


def _dedupe_repeats(words: list[Word], max_n: int = 6, keep: int = 2) -> list[Word]:
    """Drop a phrase repeated back to back more than ``keep`` times (a decoding loop)."""
    norm = [re.sub(r"\W+", "", w.text.lower()) for w in words]
    out_idx: list[int] = []
    i = 0
    while i < len(words):
        cut = False
        for n in range(1, max_n + 1):
            reps = 1
            while i + (reps + 1) * n <= len(words) and norm[i + reps * n : i + (reps + 1) * n] == norm[i : i + n]:
                reps += 1
            if reps > keep and any(norm[i : i + n]):
                out_idx.extend(range(i, i + n * keep))
                i += reps * n
                cut = True
                break
        if not cut:
            out_idx.append(i)
            i += 1
    return [words[k] for k in out_idx]


def split_turns(words: list[Word], speaker: str, channel: int, pause: float = TURN_PAUSE_S) -> list[Utterance]:
    """One utterance per run of words without a pause of ``pause`` seconds or more."""
    out: list[Utterance] = []
    cur: list[Word] = []
    for w in words:
        if cur and w.start - cur[-1].end >= pause:
            out.append(_utterance(cur, speaker, channel))
            cur = []
        cur.append(w)
    if cur:
        out.append(_utterance(cur, speaker, channel))
    return out


def _utterance(words: list[Word], speaker: str, channel: int) -> Utterance:
    text = re.sub(r"\s+", " ", " ".join(w.text for w in words)).strip()
    return Utterance(speaker=speaker, start=words[0].start, end=words[-1].end, text=text, channel=channel, words=list(words))


def _snap_start(word_start: float, db: np.ndarray, floor: float) -> float:
    """Whisper's first word of a turn often starts a few hundred ms off; the
    signal's own onset is more exact. Walk from the word to the start of the
    loud run it sits in (short dips allowed), at most 1 s back or 0.6 s on."""
    fs = FRAME / SAMPLE_RATE
    loud = db > floor + 10.0
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


# --- engines ---------------------------------------------------------------------


@dataclass
class _Channel:
    audio: np.ndarray
    speaker: str
    index: int
    regions: list[tuple[float, float]]
    packed: _Packed


class Transcriber:
    """Loads a Whisper model once; ``transcribe()`` turns decoded audio into a Transcript."""

    def __init__(self, options: TranscribeOptions | None = None):
        self.options = opts = options or TranscribeOptions()
        fw_log = logging.getLogger("faster_whisper")
        if fw_log.level == logging.NOTSET:  # its per-call INFO lines drown ours
            fw_log.setLevel(logging.WARNING)
        cache = opts.model_cache
        if cache is None:
            cache = str(get_settings().model_cache)
        self.device = opts.device
        if self.device == "auto":
            self.device = "cuda" if _cuda_available() else "cpu"
        self.cores = opts.cpu_threads or available_cores()
        if opts.engine == "faster-whisper":
            self.resolved: ResolvedModel = resolve_model(opts.model, cache, opts.allow_download)
            if self.resolved.kind == "pt":
                raise ModelError(f"{self.resolved.path} is an openai-whisper checkpoint: use --engine openai-whisper with it.")
            from faster_whisper import WhisperModel

            compute = opts.compute_type
            if compute == "auto":
                compute = "float16" if self.device == "cuda" else "int8"
            self.compute_type = compute
            # Two streams at once, one core each: two 1-thread calls beat one
            # 2-thread call about 2x here (CTranslate2 releases the GIL).
            workers = 2 if self.cores >= 2 or self.device == "cuda" else 1
            self.workers = workers
            try:
                self.model = WhisperModel(
                    str(self.resolved.path),
                    device=self.device,
                    compute_type=compute,
                    cpu_threads=max(1, self.cores // workers),
                    num_workers=workers,
                )
            except Exception as exc:
                raise ModelError(f"Cannot load Whisper model from {self.resolved.path}: {exc}") from None
        elif opts.engine == "openai-whisper":
            spec = opts.model
            if not spec.endswith(".pt"):
                raise ModelError(
                    f"The openai-whisper engine needs a local .pt checkpoint, not '{spec}' (it would download one). "
                    "Make one from the bundled model: `callreview models convert --out base.pt`, then --model base.pt."
                )
            self.resolved = resolve_model(spec, cache, False)
            self.compute_type = "float32" if self.device == "cpu" else "float16"
            self.model = load_openai_checkpoint(self.resolved.path, self.device)
            self.workers = 1  # torch spreads one call over the cores itself
            if self.device == "cpu":
                import torch

                torch.set_num_threads(self.cores)
        else:
            raise ModelError(f"Unknown engine '{opts.engine}': use faster-whisper or openai-whisper")
        self._lock = threading.Lock()  # one transcription at a time per loaded model
        self.model_name = self.resolved.name

    @property
    def language(self) -> str | None:
        lang = self.options.language
        return None if lang in (None, "", "auto") else lang

    # -- engines: packed audio in, segments with times in the packed stream out --

    def _fw_kwargs(self) -> dict:
        return dict(
            language=self.language,
            beam_size=self.options.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,  # stops one misheard phrase from looping on
        )

    @staticmethod
    def _from_fw(segments) -> list[_Seg]:
        return [
            _Seg(
                s.start, s.end, s.text,
                [Word(w.start, w.end, w.word.strip(), float(w.probability)) for w in (s.words or []) if w.word.strip()],
                s.avg_logprob, s.no_speech_prob, s.compression_ratio,
            )
            for s in segments
        ]

    def _run_one(self, audio: np.ndarray) -> tuple[list[_Seg], str]:
        if self.options.engine == "faster-whisper":
            # The temperature fallback costs time only where greedy decoding loops;
            # without it a looping window loses its real words too.
            segments, info = self.model.transcribe(audio, vad_filter=False, **self._fw_kwargs())
            return self._from_fw(segments), info.language
        res = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=self.options.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            fp16=self.device == "cuda",
        )
        segs = [
            _Seg(
                s["start"], s["end"], s["text"],
                [Word(w["start"], w["end"], w["word"].strip(), float(w["probability"])) for w in s.get("words", []) if w["word"].strip()],
                s["avg_logprob"], s["no_speech_prob"], s.get("compression_ratio", _compression_ratio(s["text"])),
            )
            for s in res["segments"]
        ]
        return segs, res.get("language", self.language or "")

    # -- the pipeline -----------------------------------------------------------

    def _prepare(self, audio: np.ndarray, other: np.ndarray | None, speaker: str, index: int) -> list[_Channel]:
        regions = speech_regions(audio, other, self.options.vad_threshold)
        return [_Channel(audio, speaker, index, regions, pack_regions(audio, regions))]

    def _finish(self, ch: _Channel, segs: list[_Seg]) -> list[Utterance]:
        words: list[Word] = []
        for seg in segs:
            why = _is_hallucination(seg)
            if why:
                log.debug("channel %d: dropped %r (%s)", ch.index, seg.text, why)
                continue
            for w in seg.words:
                s, e = ch.packed.span_to_original(w.start, w.end)
                words.append(Word(round(s, 3), round(max(e, s), 3), w.text, round(w.probability, 3)))
        words.sort(key=lambda w: w.start)
        utts = split_turns(_dedupe_repeats(words), ch.speaker, ch.index)
        db = _frame_db(ch.audio)
        floor = float(np.percentile(db, 10)) if db.size else -100.0
        for u in utts:
            start = _snap_start(u.start, db, floor)
            if start < u.end:
                u.start = start
        return utts

    def transcribe(self, audio: DecodedAudio) -> Transcript:
        """Transcribe every channel's speech and merge the turns by start time."""
        chans = audio.channels
        jobs = [(chans[i], chans[1 - i] if len(chans) == 2 else None, audio.speakers[i], i) for i in range(len(chans))]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:  # Silero runs on one core per call
            streams = [s for part in pool.map(lambda j: self._prepare(*j), jobs) for s in part if s.regions]
        if len(streams) == 1 and self.workers > 1:
            streams = _halves(streams[0])  # mono: two streams keep both cores busy
        language = self.language or ""
        with self._lock:
            if len(streams) > 1 and self.workers > 1:
                with ThreadPoolExecutor(max_workers=self.workers) as pool:
                    results = list(pool.map(lambda c: self._run_one(c.packed.audio), streams))
            else:
                results = [self._run_one(c.packed.audio) for c in streams]
        if results:
            language = results[0][1] or language
        utterances = [u for ch, (segs, _) in zip(streams, results) for u in self._finish(ch, segs)]
        utterances.sort(key=lambda u: (u.start, u.channel))
        return Transcript(utterances=utterances, duration=round(audio.duration, 3), language=language or "", model=self.model_name)


def _halves(ch: _Channel, min_speech_s: float = 40.0) -> list[_Channel]:
    """Split one channel's speech regions into two streams of about equal speech,
    at a region boundary (so no word is cut); short channels stay whole."""
    lengths = np.array([e - s for s, e in ch.regions])
    if len(lengths) < 2 or lengths.sum() < min_speech_s:
        return [ch]
    k = int(np.argmin(np.abs(np.cumsum(lengths) - lengths.sum() / 2))) + 1
    k = min(max(k, 1), len(lengths) - 1)
    parts = [ch.regions[:k], ch.regions[k:]]
    return [_Channel(ch.audio, ch.speaker, ch.index, r, pack_regions(ch.audio, r)) for r in parts]


def _cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False


_cache_lock = threading.Lock()
_transcribers: dict[tuple, Transcriber] = {}


def get_transcriber(options: TranscribeOptions | None = None) -> Transcriber:
    """One loaded Transcriber per process and options (the CLI, the app and tests share it)."""
    options = options or TranscribeOptions()
    with _cache_lock:
        t = _transcribers.get(options.key())
        if t is None:
            t = _transcribers[options.key()] = Transcriber(options)
        return t


def transcribe_file(path, options: TranscribeOptions | None = None, operator_channel: str = "left", max_duration_s: float | None = None) -> Transcript:
    """Decode a recording and transcribe it with the shared model."""
    from .audio import DEFAULT_MAX_DURATION_S, decode

    audio = decode(path, operator_channel=operator_channel, max_duration_s=max_duration_s or DEFAULT_MAX_DURATION_S)
    return get_transcriber(options).transcribe(audio)
