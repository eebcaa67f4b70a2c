"""Speech to text: each channel of a call apart, speaker turns merged by time.

Why it is fast (see docs/benchmarks.md): only speech is decoded. Each
channel's speech regions are cut out and packed, in time order, into windows
of ``window_s`` seconds (a region that does not fit is split at its quietest
moment); every word maps back to its channel and call time through the
window's piece table. Each window is encoded in a call of its own (a batch
is slower on a CPU: it spills the caches). Each core's windows are then
decoded in one beam-search batch, and their word times come from one batched
cross-attention alignment. Two such streams run at once, each CTranslate2
call on one core (one core per call scales better than two); an odd piece
left over (a short mono call is one window) runs alone on all cores. Several
calls at once (``transcribe_many``) fill the batches better still.

Why it does not invent text: a channel with no speech is never decoded; a
window whose decoding looks wrong (a loop, an unsure text) is decoded again
with beam 5, then with beam 5 that may not repeat itself, then by
faster-whisper's own loop on the padded window (never sampled: the same file
gives the same text); speech that got no words is decoded again alone,
before it is given up; pieces that look like Whisper hallucinations (high
no-speech probability with low confidence, high compression ratio, repeated
phrases, the well-known subtitle credits) are dropped.

Finding speech is ``regions``, packing it into windows ``windows``, and what a
decoded window becomes (segments, filters, turns) ``segments``; this module
holds the engines, the decoding and its recovery, and batches of files.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config import available_cores, get_settings
from pipeline.errors import ModelError
from pipeline.speech.audio import DecodedAudio
from pipeline.speech.models import ResolvedModel, load_openai_checkpoint, resolve_model
from pipeline.speech.regions import between_pauses, digital_pauses, echo_masks, frame_db, snap_start, speech_regions, speech_runs, vad_probs
from pipeline.speech.segments import Seg, channel_words, clear, compression_ratio, coverage, dedupe_repeats, is_hallucination, split_turns, window_segments
from pipeline.speech.speakers import SpeakerSplit, split_voices
from pipeline.speech.thresholds import THRESHOLDS as TH
from pipeline.speech.transcript import CLIENT, NOT_RETRIED, NOTHING_RECOGNISED, OPERATOR, UNCLEAR, UNKNOWN, Transcript, Unheard, Utterance, Word
from pipeline.speech.windows import Packed, cut, pack, pack_regions, plan_windows, share_windows

log = logging.getLogger(__name__)

NO_LOOPS = dict(repetition_penalty=TH.loop_repetition_penalty, no_repeat_ngram_size=TH.loop_no_repeat_ngram)  # the last decoding of a window that loops


# --speakers: (channel layout for audio.decode, split a mono call by voice)
SPEAKER_MODES = {
    "voice": ("auto", True),  # a speaker per channel; a mono call (or two identical channels) is split into two voices, if it has two (docs/benchmarks.md)
    "channels": ("auto", False),  # the same, but a mono call is one "unknown" speaker
    "stereo": ("stereo", False),  # forced: a speaker per channel, however alike the channels are
    "mono": ("mono", True),  # forced: the channels mixed down and split into two voices
}


@dataclass
class TranscribeOptions:
    engine: str = "faster-whisper"  # or "openai-whisper"
    model: str = "base"
    language: str | None = "ru"  # None or "auto": detect per channel
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0  # 0: all cores, shared out between the channels
    beam_size: int = 5
    speakers: str = "voice"  # one of SPEAKER_MODES
    window_s: float = TH.window_s
    allow_download: bool = False
    model_cache: str | None = None
    vad_threshold: float = TH.vad

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
            speakers=settings.speakers,
            window_s=settings.window_s,
            allow_download=settings.allow_download,
            model_cache=str(settings.model_cache),
        )

    def key(self) -> tuple:
        return dataclasses.astuple(self)

    @property
    def layout(self) -> str:
        """How ``audio.decode`` takes the channels for this speakers mode."""
        return SPEAKER_MODES[self.speakers][0]

    @property
    def split_by_voice(self) -> bool:
        return SPEAKER_MODES[self.speakers][1]


# --- engines ---------------------------------------------------------------------


@dataclass
class _Channel:
    audio: np.ndarray
    speaker: str
    index: int
    regions: list[tuple[float, float]]
    db: np.ndarray  # frame levels, for splitting windows and snapping turn starts
    probs: np.ndarray  # Silero's speech probability per frame: the acoustic evidence for keeping doubted text
    runs: list[tuple[float, float]]  # runs of speech between pauses, each of which must get a word
    pauses: list[tuple[float, float]]  # pauses of digital silence, which no word's time may cross


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
            compute = opts.compute_type
            if compute == "auto":
                compute = "float16" if self.device == "cuda" else "int8"
            self.compute_type = compute
            # Two streams at once, one core each: two 1-thread calls beat one
            # 2-thread call about 2x here (CTranslate2 releases the GIL).
            workers = 2 if self.cores >= 2 or self.device == "cuda" else 1
            self.workers = workers
            self.model = self._load_fw(max(1, self.cores // workers), workers)
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
        self._lock = _model_lock(self.model)  # one transcription at a time per loaded model, whichever transcriber holds it
        self._wide_model = None
        self.model_name = self.resolved.name

    def _load_fw(self, threads: int, workers: int):
        return _shared_fw(str(self.resolved.path), self.device, self.compute_type, threads, workers)

    def _wide(self):
        """The same weights again as one stream on all cores, loaded on first
        need (about 150 MB more, 0.3 s to load): a lone window on a one-core
        stream left the other core idle, and a short mono call is one window
        (docs/benchmarks.md, "A lone window on all cores")."""
        if self._wide_model is None:
            self._wide_model = self._load_fw(self.cores, 1)
        return self._wide_model

    def _spread(self, pool: ThreadPoolExecutor, fn, items: list) -> list:
        """``fn(model, item)`` for every item, in order: the one-core streams
        take them two at a time; an odd last one runs alone on all cores."""
        if self.workers < 2 or self.device != "cpu" or len(items) % 2 == 0:
            return list(pool.map(lambda x: fn(self.model, x), items))
        return [*pool.map(lambda x: fn(self.model, x), items[:-1]), fn(self._wide(), items[-1])]

    @property
    def language(self) -> str | None:
        lang = self.options.language
        return None if lang in (None, "", "auto") else lang

    # -- the careful decoder: faster-whisper's or openai-whisper's own loop --------

    def _run_one(self, model, audio: np.ndarray, beam_size: int) -> tuple[list[Seg], str]:
        """Packed audio in, segments with word times in the packed stream out.
        faster-whisper: timestamps and beam search that may not repeat itself,
        no sampling (the same file gives the same text); openai-whisper: its own
        temperature fallback."""
        if self.options.engine == "faster-whisper":
            segments, info = model.transcribe(
                audio,
                vad_filter=False,
                language=self.language,
                beam_size=beam_size,
                temperature=0.0,
                word_timestamps=True,
                condition_on_previous_text=False,  # stops one misheard phrase from looping on
                **NO_LOOPS,
            )
            return self._from_fw(segments), info.language
        res = model.transcribe(
            audio,
            language=self.language,
            beam_size=beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            fp16=self.device == "cuda",
        )
        segs = [
            Seg(
                s["start"], s["end"], s["text"],
                [Word(w["start"], w["end"], w["word"].strip(), float(w["probability"])) for w in s.get("words", []) if w["word"].strip()],
                s["avg_logprob"], s["no_speech_prob"], s.get("compression_ratio", compression_ratio(s["text"])),
            )
            for s in res["segments"]
        ]
        return segs, res.get("language", self.language or "")

    @staticmethod
    def _from_fw(segments) -> list[Seg]:
        return [
            Seg(
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

    def _frames(self) -> int:
        """Mel frames of every window: as long as the longest may be, a short
        one padded with silence (without that padding Whisper misheard more:
        WER 0.224 -> 0.269 on the demo calls)."""
        return min(int(round(self.options.window_s * 50)) * 2, 3000)

    def _encode(self, model, win: Packed) -> np.ndarray:
        """One window's encoder states, encoded alone (a batch is slower on a
        CPU: it spills the caches)."""
        import ctranslate2

        frames = self._frames()
        f = model.feature_extractor(win.audio)[:, :frames]
        f = np.pad(f, ((0, 0), (0, frames - f.shape[1])))
        return np.asarray(model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(f[None], dtype=np.float32)), to_cpu=True))

    def _detect_language(self, enc: np.ndarray) -> str:
        """The language most of these windows' encoder states are in (a call is in one language)."""
        import ctranslate2

        votes = [langs[0][0].strip("<|>") for langs in self.model.model.detect_language(ctranslate2.StorageView.from_array(enc))]
        return max(set(votes), key=votes.count)

    def _searches(self) -> list[dict]:
        """The decodings tried in turn on a window until one looks right: the
        configured beam, beam 5, then beam 5 that may not repeat itself. All
        deterministic: Whisper's sampling fallback gave a different text on
        every run of the same file (and made a test fail one run in ten)."""
        beam = max(5, self.options.beam_size)
        first = [dict(beam_size=self.options.beam_size)] if self.options.beam_size < beam else []
        return [*first, dict(beam_size=beam), dict(beam_size=beam, **NO_LOOPS)]

    def _decode_windows(self, model, wins: list[Packed], enc: np.ndarray, language: str) -> list[list[Seg] | None]:
        """For each window and its encoder states: one segment per piece (word
        times in window time). All windows go in one batch with the configured
        beam; those that look wrong (a loop, an unsure text) again on the same
        encoder states (``_searches``); None where all that fails and the
        careful decoder must redo the window."""
        import ctranslate2
        from faster_whisper.transcribe import get_suppressed_tokens

        tok = self._tokenizer(language)
        suppress = get_suppressed_tokens(tok, [-1])
        frames = self._frames()
        out: list[list[Seg] | None] = [None] * len(wins)
        todo = list(range(len(wins)))
        for search in self._searches():
            if not todo:
                break
            states = ctranslate2.StorageView.from_array(enc[todo])
            results = model.model.generate(
                states,
                [tok.sot_sequence + [tok.no_timestamps]] * len(todo),
                max_length=min(TH.max_tokens, int(TH.tokens_per_s * frames / 100) + 16),  # a loop stops early
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=suppress,
                **search,
            )
            best = [max(range(len(r.scores)), key=lambda h: r.scores[h]) for r in results]
            seqs = [r.sequences_ids[h] for r, h in zip(results, best)]
            tokens = [[t for t in seq if t < tok.eot] for seq in seqs]
            aligned = model.find_alignment(tok, tokens, states, [min(frames, len(wins[i].audio) // 160) for i in todo])
            left = []
            for i, r, h, seq, toks, words in zip(todo, results, best, seqs, tokens, aligned):
                avg_logprob = r.scores[h] * len(seq) / (len(seq) + 1)
                out[i] = window_segments(wins[i], tok.decode(toks), words, avg_logprob, r.no_speech_prob)
                if out[i] is None:
                    left.append(i)
            todo = left
        return out

    def _run_windows(self, wins: list[Packed]) -> tuple[list[tuple[Packed, list[Seg]]], str]:
        """Decode all windows: each encoded by whichever worker is free, then
        one batch per worker, the batches balanced by speech (a window's
        decoding costs about its words); windows every fast pass got wrong go
        to the careful decoder. (Speech a window left out is decoded again
        later, by ``_recover``.) A fixed share of windows per worker left one
        core idle for a window or two of every call (docs/benchmarks.md, "Rerun
        on another machine of this kind"). The language, when not given, comes
        from the first windows' encoder states: no window is encoded twice."""
        if not wins:
            return [], self.language or ""
        done: list[tuple[Packed, list[Seg]]] = []
        careful: list[Packed] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            enc = self._spread(pool, self._encode, wins)
            language = self.language or self._detect_language(np.concatenate(enc[:3]))
            groups = _balanced([len(w.audio) for w in wins], self.workers)

            def decode(model, group: list[int]) -> list[list[Seg] | None]:
                return self._decode_windows(model, [wins[i] for i in group], np.concatenate([enc[i] for i in group]), language)

            for group, results in zip(groups, self._spread(pool, decode, groups)):
                for i, segs in zip(group, results):
                    if segs is None:
                        careful.append(wins[i])
                    else:
                        done.append((wins[i], segs))
            for w, (segs, _) in zip(careful, self._spread(pool, lambda m, w: self._run_one(m, w.audio, max(5, self.options.beam_size)), careful)):
                done.append((w, segs))
        return done, language

    # -- the pipeline -----------------------------------------------------------

    def _prepare(self, audio: np.ndarray, db: np.ndarray, echo: np.ndarray | None, speaker: str, index: int) -> _Channel:
        probs, vad = vad_probs(audio), self.options.vad_threshold
        return _Channel(audio, speaker, index, speech_regions(audio, db, echo, vad, probs), db, probs, speech_runs(db, probs, echo, vad),
                        digital_pauses(db))

    def _windows(self, chans: list[_Channel], first: int = 0) -> list[Packed]:
        """The speech of one call's channels packed into windows, pieces owned by
        stream ``first + channel``. Each channel has windows of its own: one
        voice per window misheard less than both sides' turns interleaved (dev
        dialogues, docs/benchmarks.md); only short leftovers of two channels
        share one (``share_windows``). openai-whisper: one stream per channel,
        its own loop slides through it."""
        if self.options.engine == "openai-whisper":
            return [pack_regions(c.audio, c.regions, first + k) for k, c in enumerate(chans) if c.regions]
        plans = [[(s, e, k) for s, e in w] for k, c in enumerate(chans) for w in plan_windows(c.regions, c.db, self.options.window_s)]
        return [pack([(cut(chans[k].audio, s, e), s, first + k) for s, e, k in w]) for w in share_windows(plans, self.options.window_s)]

    def _recover(self, chans: list[_Channel], words: list[list[Word]]) -> tuple[list[list[Word]], list[tuple[int, float, float, str]]]:
        """Speech that got no words is decoded once more, each stretch on its own
        with beam 5, before it is given up: a window decoded in a batch can lose
        a short sentence among its neighbours, or be called silence whole. Then
        each part of a stretch between pauses of digital silence that is still
        without words is decoded alone: the tail of one turn and the short reply
        after it were read as the tail alone («в нём нет.», not «А пицца совсем
        никак?»), while a one-word reply decoded alone is heard too unsurely to
        keep («Ладно.» at 0.21, at 0.50 beside the next turn). What this pass
        finds must pass every hallucination rule and be heard clearly: on speech
        Whisper cannot understand it mumbles (mean word probability ~0.3). Also
        returns each stretch tried (stream, start, end) and why it got no words,
        if it did not; a part's reason first."""
        todo = [
            (k, u.start, min(u.end, u.start + TH.redo_max_s))
            for k, ch in enumerate(chans)
            for u in coverage([ch.regions], [words[k]], [ch.runs], [ch.pauses]).unheard[: TH.redo_max_per_channel]
        ]
        if not todo:
            return words, []
        found, tried = self._decode_again(chans, todo)
        parts = wordless_parts(todo, found, [c.pauses for c in chans])
        if parts:
            more, tried_parts = self._decode_again(chans, parts)
            found, tried = [f + m for f, m in zip(found, more)], tried_parts + tried
        return [sorted(w + f, key=lambda x: x.start) for w, f in zip(words, found)], tried

    def _decode_again(self, chans: list[_Channel], stretches: list[tuple[int, float, float]]) -> tuple[list[list[Word]], list[tuple[int, float, float, str]]]:
        """Each stretch (stream, start, end) decoded in a window of its own, with
        some context; the words kept per stream, and each stretch tried with why
        it would have no words."""
        todo = [(k, max(0.0, s - TH.redo_pad_s), e + TH.redo_pad_s) for k, s, e in stretches]
        pieces = [pack([(cut(chans[k].audio, s, e), s, k)]) for k, s, e in todo]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            decoded = self._spread(pool, lambda m, p: self._run_one(m, p.audio, max(5, self.options.beam_size))[0], pieces)
        kept = [(p, [g for g in segs if clear(g) and is_hallucination(g) is None]) for p, segs in zip(pieces, decoded)]
        found = channel_words(kept, [c.probs for c in chans], len(chans))
        log.debug("speech without words decoded again: %d stretches, %d words found", len(todo), sum(map(len, found)))
        return found, [(k, s, e, UNCLEAR if segs else NOTHING_RECOGNISED) for (k, s, e), segs in zip(todo, decoded)]

    def _finish(self, ch: _Channel, words: list[Word]) -> tuple[list[Utterance], SpeakerSplit | None]:
        """A channel's turns; a mono channel's split between two voices when it has two."""
        words = dedupe_repeats(sorted(words, key=lambda w: w.start))
        runs, split = [(ch.speaker, words)], None
        if ch.speaker == UNKNOWN and self.options.split_by_voice and words:
            found = split_voices(ch.audio, ch.probs, words)
            if found is not None:
                voices, separation = found
                names = {voices[0]: OPERATOR, 1 - voices[0]: CLIENT}  # the operator answers: the first voice
                runs = [(names[v], [w for w, _ in grp]) for v, grp in itertools.groupby(zip(words, voices), key=lambda x: x[1])]
                split = SpeakerSplit("voice (resemblyzer, spectral)", "first to speak", separation)
        utts = [u for speaker, ws in runs for u in split_turns(ws, speaker, ch.index)]
        floor = float(np.percentile(ch.db, 10)) if ch.db.size else -100.0
        for u in utts:
            start = snap_start(u.start, ch.db, floor)
            if start < u.end:
                u.start = start
        return utts, split

    def transcribe(self, audio: DecodedAudio) -> Transcript:
        """Transcribe every channel's speech and merge the turns by start time."""
        return self.transcribe_many([audio])[0]

    def transcribe_many(self, audios: list[DecodedAudio]) -> list[Transcript]:
        """Several calls at once: their windows (never mixed between calls)
        share the decoding batches, and fuller batches cost less per call."""
        if len(audios) > 1 and (self.language is None or self.options.engine != "faster-whisper"):
            return [self.transcribe(a) for a in audios]  # one language per batch; openai-whisper has no batches
        levels = [[frame_db(c) for c in a.channels] for a in audios]  # once per channel: its own regions, the echo test, turn starts
        channels = sum(len(a.channels) for a in audios)
        with ThreadPoolExecutor(max_workers=max(1, min(channels, self.cores))) as pool:  # Silero runs on one core per call
            # each call's echo paths are measured once, for both its channels
            echoes = list(pool.map(lambda dbs: echo_masks(*dbs) if len(dbs) == 2 else (None,) * len(dbs), levels))
            jobs = [
                (a.channels[i], dbs[i], echo[i], a.speakers[i], i)
                for a, dbs, echo in zip(audios, levels, echoes)
                for i in range(len(a.channels))
            ]
            prepared = list(pool.map(lambda j: self._prepare(*j), jobs))
        firsts = np.cumsum([0] + [len(a.channels) for a in audios]).tolist()
        wins = [w for a, first in zip(audios, firsts) for w in self._windows(prepared[first : first + len(a.channels)], first)]
        with self._lock:
            if self.options.engine == "faster-whisper":
                decoded, language = self._run_windows(wins)
            else:
                done = [self._run_one(self.model, w.audio, self.options.beam_size) for w in wins]
                decoded = [(w, segs) for w, (segs, _) in zip(wins, done)]
                language = (done[0][1] if done else "") or self.language or ""
            words, tried = self._recover(prepared, channel_words(decoded, [c.probs for c in prepared], len(prepared)))
        out = []
        for a, first in zip(audios, firsts):
            streams = range(first, first + len(a.channels))
            finished = [self._finish(prepared[k], words[k]) for k in streams]
            utterances = [u for utts, _ in finished for u in utts]
            splits = [s.to_dict() for _, s in finished if s is not None]
            utterances.sort(key=lambda u: (u.start, u.channel))
            heard = coverage([prepared[k].regions for k in streams], [[w for u in utterances if u.channel == k - first for w in u.words] for k in streams],
                             [prepared[k].runs for k in streams], [prepared[k].pauses for k in streams])
            heard.unheard = [dataclasses.replace(x, reason=_why_unheard(x, first, tried)) for x in heard.unheard]
            if heard.unheard:
                log.info("speech without words: %s", ", ".join(f"ch{x.channel} {x.start:.1f}-{x.end:.1f} s ({x.reason})" for x in heard.unheard))
            out.append(Transcript(utterances=utterances, duration=round(a.duration, 3), language=language or "", model=self.model_name,
                                  coverage=heard, speakers=splits[0] if splits else None))
        return out


def wordless_parts(stretches: list[tuple[int, float, float]], words: list[list[Word]],
                   pauses: list[list[tuple[float, float]]]) -> list[tuple[int, float, float]]:
    """The parts (stream, start, end) between pauses of digital silence of each
    stretch cut by one or more, that no word (per stream) has its middle in."""
    return [(k, a, b) for k, s, e in stretches for a, b in between_pauses(s, e, pauses[k])
            if (a, b) != (s, e) and not any(a <= (w.start + w.end) / 2 < b for w in words[k])]


def _balanced(sizes: list[int], n: int) -> list[list[int]]:
    """Indexes of ``sizes`` in at most ``n`` non-empty groups of about equal
    sum: the largest first, each to the lightest group."""
    groups: list[list[int]] = [[] for _ in range(min(n, len(sizes)))]
    sums = [0] * len(groups)
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        g = sums.index(min(sums))
        groups[g].append(i)
        sums[g] += sizes[i]
    return groups


def _why_unheard(x: Unheard, first: int, tried: list[tuple[int, float, float, str]]) -> str:
    """The reason of the stretch decoded again that overlaps ``x`` (its call's streams start at ``first``)."""
    return next((why for k, s, e, why in tried if k == first + x.channel and s < x.end and e > x.start), NOT_RETRIED)


def _cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False


_cache_lock = threading.Lock()
_transcribers: dict[tuple, Transcriber] = {}
_models_lock = threading.Lock()  # apart from _cache_lock: get_transcriber holds that one while a Transcriber loads
_fw_models: dict[tuple, Any] = {}
_model_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shared_fw(path: str, device: str, compute_type: str, threads: int, workers: int):
    """One loaded copy of a model per process and thread layout: transcribers
    that differ in language or beam share it (one per language held the
    weights twice, docs/benchmarks.md)."""
    from faster_whisper import WhisperModel

    key = (path, device, compute_type, threads, workers)
    with _models_lock:
        if key not in _fw_models:
            try:
                _fw_models[key] = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=threads, num_workers=workers)
            except Exception as exc:
                raise ModelError(f"Cannot load Whisper model from {path}: {exc}") from None
        return _fw_models[key]


def _model_lock(model) -> threading.Lock:
    """The lock on which every transcriber sharing ``model`` takes its turn."""
    with _models_lock:
        return _model_locks.setdefault(model, threading.Lock())


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

    options = options or TranscribeOptions()
    batch: list = []  # (path, audio, None) or (path, None, error), in input order

    def flush():
        audios = [a for _, a, _ in batch if a is not None]
        done = iter(get_transcriber(options).transcribe_many(audios) if audios else [])
        yield from ((path, audio, next(done) if audio is not None else error) for path, audio, error in batch)
        batch.clear()

    for path, operator_channel in items:
        try:
            batch.append((path, decode(path, operator_channel, max_duration_s or DEFAULT_MAX_DURATION_S, options.layout), None))
        except CallreviewError as exc:
            batch.append((path, None, exc))
        decoded = [a for _, a, _ in batch if a is not None]
        if len(decoded) >= BATCH_CALLS or sum(a.duration for a in decoded) > BATCH_AUDIO_S:
            yield from flush()
    yield from flush()
