"""Speech to text: each channel of a call apart, speaker turns merged by time.

Why it is fast (see docs/benchmarks.md): only speech is decoded. The speech
regions of all channels are cut out and packed, in time order, into windows
of WINDOW_S seconds (a region that does not fit is split at its quietest
moment); every word maps back to its channel and call time through the
window's piece table. Whisper's encoder costs grow with the square of its
input, so a 20 s window costs 60% of a 30 s one per second of speech; each
window is encoded in a call of its own (a batch is slower on a CPU: it spills
the caches). Each core's windows are then decoded in one greedy batch, and
their word times come from one batched cross-attention alignment. Two such
streams run at once, each CTranslate2 call on one core (one core per call
scales better than two). Several calls at once (``transcribe_many``) fill
the batches better still.

Why it does not invent text: a channel with no speech is never decoded; a
window whose decoding looks wrong (a loop, an unsure text) is decoded again
with beam 5, then sampled at rising temperature, then by faster-whisper's own
loop on the padded window; speech a window left out is decoded again in a
window of its own; pieces that look like Whisper hallucinations (high
no-speech probability with low confidence, high compression ratio, repeated
phrases, the well-known subtitle credits) are dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.config import available_cores, get_settings
from pipeline.errors import ModelError
from pipeline.speech.audio import SAMPLE_RATE, DecodedAudio
from pipeline.speech.models import ResolvedModel, load_openai_checkpoint, resolve_model
from pipeline.speech.transcript import Transcript, Utterance, Word

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
WINDOW_S = 20.0  # packed speech per decoded window (the encoder sees only this much)
SPLIT_DB = 12.0  # a region is split between windows only at a frame this close to the noise floor
MAX_TOKENS = 224  # per window, as Whisper's own sample_len
TOKENS_PER_S = 8  # more tokens than this per second of window is a loop (speech gives 3-5)
REDO_UNHEARD_S = 2.0  # a piece this long that got no word is decoded again in a window of its own
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
    beam_size: int = 1
    window_s: float = WINDOW_S
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
            window_s=settings.window_s,
            allow_download=settings.allow_download,
            model_cache=str(settings.model_cache),
        )

    def key(self) -> tuple:
        return dataclasses.astuple(self)


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


def speech_regions(channel: np.ndarray, db: np.ndarray, other_db: np.ndarray | None = None, vad_threshold: float = VAD_THRESHOLD) -> list[tuple[float, float]]:
    """Seconds (start, end) where a channel holds speech: Silero VAD at a low
    threshold, or energy well above the channel's noise floor (``db``, its
    frame levels) that is not the other channel (``other_db``) leaking in.
    Padded, and merged when close."""
    if db.size == 0:
        return []
    probs = _vad_probs(channel)[: db.size]
    floor = float(np.percentile(db, 10))
    # Digital silence or a near-silent line: nothing can be speech below -60 dBFS.
    loud = (db > max(floor + ENERGY_MARGIN_DB, -60.0))
    if other_db is not None and other_db.size >= db.size:
        loud &= ~(other_db[: db.size] > db + CROSSTALK_DB)
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
    owners: list[int] = field(default_factory=list)  # the stream each piece came from

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

    def span_to_original(self, start: float, end: float) -> tuple[float, float, int]:
        """A word's span in call time, and the stream it came from. Whisper
        stretches words over the short packed gaps (the first word after a gap
        often starts before it): the word belongs to the piece holding its middle."""
        k = self._piece((start + end) / 2)
        return self.to_original(start, k), self.to_original(end, k), self.owners[k]


def _pack(parts: list[tuple[np.ndarray, float, int]]) -> _Packed:
    """Join (audio, original start, owner) parts with short silences."""
    gap = np.zeros(int(PACK_GAP_S * SAMPLE_RATE), dtype=np.float32)
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
    return _Packed(audio, pieces, owners)


def _cut(x: np.ndarray, s: float, e: float) -> np.ndarray:
    return x[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)]


def pack_regions(channel: np.ndarray, regions: list[tuple[float, float]], owner: int = 0) -> _Packed:
    """Cut one channel's speech regions out and join them with short silences."""
    return _pack([(_cut(channel, s, e), s, owner) for s, e in regions])


def plan_windows(regions: list[list[tuple[float, float]]], dbs: list[np.ndarray], length: float = WINDOW_S) -> list[list[tuple[int, float, float]]]:
    """Share the speech regions of all streams, in time order, out into windows
    of at most ``length`` seconds of packed audio: (stream, start, end) pieces.
    A region that does not fit the room left is split at its quietest frame if
    that frame is near the noise floor (between words), else it opens the next
    window; a region longer than a window is split regardless."""
    fs = FRAME / SAMPLE_RATE
    floors = [float(np.percentile(db, 10)) if db.size else -100.0 for db in dbs]
    items = sorted((s, e, k) for k, rs in enumerate(regions) for s, e in rs)
    windows: list[list[tuple[int, float, float]]] = []
    cur: list[tuple[int, float, float]] = []
    used = 0.0
    for s, e, k in items:
        while True:
            gap = PACK_GAP_S if cur else 0.0
            if used + gap + (e - s) <= length:
                cur.append((k, s, e))
                used += gap + e - s
                break
            room = length - used - gap
            cut = None
            if room >= 2.0:
                lo, hi = int((s + 1.0) / fs), int((s + room) / fs)
                db = dbs[k]
                if hi > lo and hi <= db.size:
                    j = lo + int(np.argmin(db[lo:hi]))
                    if db[j] < floors[k] + SPLIT_DB or e - s > length:
                        cut = round((j + 0.5) * fs, 3)
            if cut is None and not cur:
                cut = s + length  # longer than a window and no quiet frame in reach
            if cut is not None:
                cur.append((k, s, cut))
                s = cut
            windows.append(cur)
            cur, used = [], 0.0
    if cur:
        windows.append(cur)
    return windows


def _fill(parts: list[tuple[np.ndarray, float, int]], length: float) -> list[_Packed]:
    """Pack (audio, original start, owner) parts, in order, into windows of at most ``length`` seconds."""
    groups: list[list[tuple[np.ndarray, float, int]]] = []
    used = 0.0
    for part in parts:
        add = len(part[0]) / SAMPLE_RATE
        if not groups or used + PACK_GAP_S + add > length:
            groups.append([])
            used = -PACK_GAP_S
        groups[-1].append(part)
        used += PACK_GAP_S + add
    return [_pack(g) for g in groups]


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


def _window_segments(w: _Packed, text: str, words: list[dict], avg_logprob: float, no_speech_prob: float) -> tuple[list[_Seg], list[int]] | None:
    """One decoded window as one segment per piece, and the pieces (of
    REDO_UNHEARD_S or more) it heard no word in; None if it looks wrong."""
    if no_speech_prob > 0.6 and avg_logprob < -1.0:
        return [], []  # Whisper's own rule: this window is silence
    why = "repetitive" if _compression_ratio(text) > 2.4 else "unsure" if avg_logprob < -1.0 else None
    if why:
        log.debug("window of %.1f s decoded again (%s): %r", len(w.audio) / SAMPLE_RATE, why, text)
        return None
    per_piece: list[list[Word]] = [[] for _ in w.pieces]
    for x in words:
        if x["word"].strip():
            per_piece[w._piece((x["start"] + x["end"]) / 2)].append(Word(float(x["start"]), float(x["end"]), x["word"].strip(), float(x["probability"])))
    segs = []
    for ws in per_piece:
        if ws:
            joined = " ".join(x.text for x in ws)
            segs.append(_Seg(ws[0].start, ws[-1].end, joined, ws, avg_logprob, no_speech_prob, _compression_ratio(joined)))
    return segs, [k for k, ws in enumerate(per_piece) if not ws and w.pieces[k][2] >= REDO_UNHEARD_S]


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
    db: np.ndarray  # frame levels, for splitting windows and snapping turn starts


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
        if not 5.0 <= opts.window_s <= 30.0:
            raise ModelError(f"window_s is {opts.window_s:g}: it must be 5 to 30 seconds (Whisper hears at most 30 s at once).")
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

    # -- the careful decoder: faster-whisper's or openai-whisper's own loop --------

    def _run_one(self, audio: np.ndarray, beam_size: int) -> tuple[list[_Seg], str]:
        """Packed audio in, segments with word times in the packed stream out.
        Timestamps, beam search and the temperature fallback (which costs time
        only where decoding loops, and keeps a looping window's real words)."""
        if self.options.engine == "faster-whisper":
            segments, info = self.model.transcribe(
                audio,
                vad_filter=False,
                language=self.language,
                beam_size=beam_size,
                word_timestamps=True,
                condition_on_previous_text=False,  # stops one misheard phrase from looping on
            )
            return self._from_fw(segments), info.language
        res = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=beam_size,
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

    # -- the fast decoder: windows encoded alone, decoded in one batch -------------

    def _tokenizer(self, language: str):
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=language)

    def _encode(self, wins: list[_Packed]):
        """Encoder states of each window, encoded alone (a batch is slower on a
        CPU: it spills the caches), and their length in mel frames. Every window
        is as long as the longest may be, a short one padded with silence:
        without that padding Whisper misheard more (WER 0.224 -> 0.269 on the
        demo calls)."""
        import ctranslate2

        frames = min(int(round(self.options.window_s * 50)) * 2, 3000)
        out = []
        for w in wins:
            f = self.model.feature_extractor(w.audio)[:, :frames]
            f = np.pad(f, ((0, 0), (0, frames - f.shape[1])))
            out.append(np.asarray(self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(f[None], dtype=np.float32)), to_cpu=True)))
        return np.concatenate(out), frames

    def _detect_language(self, wins: list[_Packed]) -> str:
        """The language most windows are in (a call is in one language)."""
        import ctranslate2

        enc, _ = self._encode(wins[:3])
        votes = [langs[0][0].strip("<|>") for langs in self.model.model.detect_language(ctranslate2.StorageView.from_array(enc))]
        return max(set(votes), key=votes.count)

    def _decode_windows(self, wins: list[_Packed], language: str) -> list[tuple[list[_Seg], list[int]] | None]:
        """For each window: one segment per piece (word times in window time)
        and the pieces of speech it left out. All windows go in one batch with
        the configured beam (greedy by default); those that look wrong (a loop,
        an unsure text) again on the same encoder states with beam 5, then
        sampled at rising temperature (Whisper's own fallback, best of 5); None
        where all that fails and the careful decoder must redo the window."""
        import ctranslate2
        from faster_whisper.transcribe import get_suppressed_tokens

        tok = self._tokenizer(language)
        suppress = get_suppressed_tokens(tok, [-1])
        enc, frames = self._encode(wins)
        out: list[tuple[list[_Seg], list[int]] | None] = [None] * len(wins)
        todo = list(range(len(wins)))
        for beam, temperature in ((self.options.beam_size, 0.0), (max(5, self.options.beam_size), 0.0), (1, 0.4), (1, 0.8)):
            if not todo:
                break
            states = ctranslate2.StorageView.from_array(enc[todo])
            sampling = dict(sampling_topk=0, sampling_temperature=temperature, num_hypotheses=5) if temperature else {}
            results = self.model.model.generate(
                states,
                [tok.sot_sequence + [tok.no_timestamps]] * len(todo),
                beam_size=beam,
                max_length=min(MAX_TOKENS, int(TOKENS_PER_S * frames / 100) + 16),  # a loop stops early
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=suppress,
                **sampling,
            )
            best = [max(range(len(r.scores)), key=lambda h: r.scores[h]) for r in results]
            seqs = [r.sequences_ids[h] for r, h in zip(results, best)]
            tokens = [[t for t in seq if t < tok.eot] for seq in seqs]
            aligned = self.model.find_alignment(tok, tokens, states, [min(frames, len(wins[i].audio) // 160) for i in todo])
            left = []
            for i, r, h, seq, toks, words in zip(todo, results, best, seqs, tokens, aligned):
                avg_logprob = r.scores[h] * len(seq) / (len(seq) + 1)
                out[i] = _window_segments(wins[i], tok.decode(toks), words, avg_logprob, r.no_speech_prob)
                if out[i] is None:
                    left.append(i)
            todo = left
        return out

    def _run_windows(self, wins: list[_Packed]) -> tuple[list[tuple[_Packed, list[_Seg]]], str]:
        """Decode all windows, one batch per worker. Speech a window left out is
        decoded once more in windows of its own; windows every fast pass got
        wrong go to the careful decoder."""
        if not wins:
            return [], self.language or ""
        language = self.language or self._detect_language(wins)
        done: list[tuple[_Packed, list[_Seg]]] = []
        careful: list[_Packed] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for again in (True, False):
                groups = [wins[g :: self.workers] for g in range(min(self.workers, len(wins)))]
                left_out: list[tuple[np.ndarray, float, int]] = []
                for group, results in zip(groups, pool.map(lambda g: self._decode_windows(g, language), groups)):
                    for w, res in zip(group, results):
                        if res is None:
                            careful.append(w)
                            continue
                        done.append((w, res[0]))
                        left_out += [(_cut(w.audio, w.pieces[k][0], w.pieces[k][0] + w.pieces[k][2]), w.pieces[k][1], w.owners[k]) for k in res[1]]
                if not (again and left_out):
                    break
                log.debug("%d pieces left out: decoded again in windows of their own", len(left_out))
                wins = _fill(left_out, self.options.window_s)
            for w, (segs, _) in zip(careful, pool.map(lambda w: self._run_one(w.audio, max(5, self.options.beam_size)), careful)):
                done.append((w, segs))
        return done, language

    # -- the pipeline -----------------------------------------------------------

    def _prepare(self, audio: np.ndarray, db: np.ndarray, other_db: np.ndarray | None, speaker: str, index: int) -> _Channel:
        return _Channel(audio, speaker, index, speech_regions(audio, db, other_db, self.options.vad_threshold), db)

    def _windows(self, chans: list[_Channel], first: int = 0) -> list[_Packed]:
        """The speech of one call's channels packed into windows, pieces owned by
        stream ``first + channel`` (openai-whisper: one stream per channel, its
        own loop slides through it)."""
        if self.options.engine == "openai-whisper":
            return [pack_regions(c.audio, c.regions, first + k) for k, c in enumerate(chans) if c.regions]
        plan = plan_windows([c.regions for c in chans], [c.db for c in chans], self.options.window_s)
        return [_pack([(_cut(chans[k].audio, s, e), s, first + k) for k, s, e in w]) for w in plan]

    def _words(self, decoded: list[tuple[_Packed, list[_Seg]]], n: int) -> list[list[Word]]:
        """Each channel's words in call time, hallucinated segments dropped."""
        words: list[list[Word]] = [[] for _ in range(n)]
        for w, ss in decoded:
            for seg in ss:
                why = _is_hallucination(seg)
                if why:
                    log.debug("dropped %r (%s)", seg.text, why)
                    continue
                for x in seg.words:
                    s, e, k = w.span_to_original(x.start, x.end)
                    words[k].append(Word(round(s, 3), round(max(e, s), 3), x.text, round(x.probability, 3)))
        return words

    def _finish(self, ch: _Channel, words: list[Word]) -> list[Utterance]:
        words.sort(key=lambda w: w.start)
        utts = split_turns(_dedupe_repeats(words), ch.speaker, ch.index)
        floor = float(np.percentile(ch.db, 10)) if ch.db.size else -100.0
        for u in utts:
            start = _snap_start(u.start, ch.db, floor)
            if start < u.end:
                u.start = start
        return utts

    def transcribe(self, audio: DecodedAudio) -> Transcript:
        """Transcribe every channel's speech and merge the turns by start time."""
        return self.transcribe_many([audio])[0]

    def transcribe_many(self, audios: list[DecodedAudio]) -> list[Transcript]:
        """Several calls at once: their windows (never mixed between calls)
        share the decoding batches, and fuller batches cost less per call."""
        if len(audios) > 1 and (self.language is None or self.options.engine != "faster-whisper"):
            return [self.transcribe(a) for a in audios]  # one language per batch; openai-whisper has no batches
        levels = [[_frame_db(c) for c in a.channels] for a in audios]  # once per channel: its own regions, the other's echo test, turn starts
        jobs = [
            (a.channels[i], dbs[i], dbs[1 - i] if len(dbs) == 2 else None, a.speakers[i], i)
            for a, dbs in zip(audios, levels)
            for i in range(len(a.channels))
        ]
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), self.cores))) as pool:  # Silero runs on one core per call
            prepared = list(pool.map(lambda j: self._prepare(*j), jobs))
        firsts = np.cumsum([0] + [len(a.channels) for a in audios]).tolist()
        wins = [w for a, first in zip(audios, firsts) for w in self._windows(prepared[first : first + len(a.channels)], first)]
        with self._lock:
            if self.options.engine == "faster-whisper":
                decoded, language = self._run_windows(wins)
            else:
                done = [self._run_one(w.audio, self.options.beam_size) for w in wins]
                decoded = [(w, segs) for w, (segs, _) in zip(wins, done)]
                language = (done[0][1] if done else "") or self.language or ""
        words = self._words(decoded, len(prepared))
        out = []
        for a, first in zip(audios, firsts):
            streams = range(first, first + len(a.channels))
            utterances = [u for k in streams for u in self._finish(prepared[k], words[k])]
            utterances.sort(key=lambda u: (u.start, u.channel))
            out.append(Transcript(utterances=utterances, duration=round(a.duration, 3), language=language or "", model=self.model_name))
        return out


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


BATCH_CALLS = 8  # calls decoded together by transcribe_files
BATCH_AUDIO_S = 3600.0  # ...and no more audio than this in memory at once


def transcribe_files(items, options: TranscribeOptions | None = None, max_duration_s: float | None = None):
    """Decode recordings, given as (path, operator channel) pairs, and
    transcribe them with the shared model, several calls per batch. Yields
    (path, decoded audio or None, Transcript or the error that stopped that
    file), in order; a file that cannot be decoded does not stop the others."""
    from pipeline.errors import CallreviewError
    from pipeline.speech.audio import DEFAULT_MAX_DURATION_S, decode

    batch: list = []  # (path, audio, None) or (path, None, error), in input order

    def flush():
        audios = [a for _, a, _ in batch if a is not None]
        done = iter(get_transcriber(options).transcribe_many(audios) if audios else [])
        yield from ((path, audio, next(done) if audio is not None else error) for path, audio, error in batch)
        batch.clear()

    for path, operator_channel in items:
        try:
            batch.append((path, decode(path, operator_channel=operator_channel, max_duration_s=max_duration_s or DEFAULT_MAX_DURATION_S), None))
        except CallreviewError as exc:
            batch.append((path, None, exc))
        decoded = [a for _, a, _ in batch if a is not None]
        if len(decoded) >= BATCH_CALLS or sum(a.duration for a in decoded) > BATCH_AUDIO_S:
            yield from flush()
    yield from flush()
