"""What a decoded window becomes: one segment per packed piece, the filters that
drop Whisper's hallucinations and loops, and speaker turns split at pauses."""

from __future__ import annotations

import dataclasses
import logging
import re
import zlib
from dataclasses import dataclass

import numpy as np

from pipeline.speech.audio import SAMPLE_RATE
from pipeline.speech.regions import FRAME
from pipeline.speech.thresholds import THRESHOLDS as TH
from pipeline.speech.transcript import Coverage, Unheard, Utterance, Word
from pipeline.speech.windows import Packed

log = logging.getLogger(__name__)


_SPOKEN = re.compile(r"\w")
_HALLUCINATIONS = re.compile(
    r"продолжение следует|субтитр|редактор\w* субтитров|корректор|спасибо за просмотр|"
    r"подпис\w+ на (наш )?канал|ставьте лайк|dimatorzok|amara\.org|синецкая|егорова",
    re.IGNORECASE,
)


@dataclass
class Seg:
    start: float
    end: float
    text: str
    words: list[Word]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


def compression_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return len(b) / max(1, len(zlib.compress(b)))


def mean_word_prob(seg: Seg) -> float:
    return float(np.mean([x.probability for x in seg.words])) if seg.words else 0.0


def is_hallucination(seg: Seg) -> str | None:
    text = seg.text.strip()
    if not text or not seg.words:
        return "empty"
    if _HALLUCINATIONS.search(text):
        return "known phrase"
    if seg.compression_ratio > TH.loop_compression:
        return "repetitive"
    if seg.no_speech_prob > TH.no_speech and seg.avg_logprob < TH.no_speech_logprob:
        return "no speech"
    if seg.avg_logprob < TH.min_logprob:
        return "low confidence"
    if len(seg.words) >= 3 and mean_word_prob(seg) < TH.min_word_prob:
        return "low word confidence"
    return None


def window_segments(w: Packed, text: str, words: list[dict], avg_logprob: float, no_speech_prob: float) -> list[Seg] | None:
    """One decoded window as one segment per piece that got words; None if it looks wrong."""
    if no_speech_prob > TH.silent_window_no_speech and avg_logprob < TH.silent_window_logprob:
        return []  # Whisper's own rule: this window is silence (its speech, if any, is decoded again alone)
    why = "repetitive" if compression_ratio(text) > TH.loop_compression else "unsure" if avg_logprob < TH.unsure_logprob else None
    if why:
        log.debug("window of %.1f s decoded again (%s): %r", len(w.audio) / SAMPLE_RATE, why, text)
        return None
    per_piece: list[list[Word]] = [[] for _ in w.pieces]
    for x in words:
        if x["word"].strip():
            per_piece[w.piece_at((x["start"] + x["end"]) / 2)].append(Word(float(x["start"]), float(x["end"]), x["word"].strip(), float(x["probability"])))
    segs = []
    for ws in per_piece:
        if ws:
            joined = " ".join(x.text for x in ws)
            segs.append(Seg(ws[0].start, ws[-1].end, joined, ws, avg_logprob, no_speech_prob, compression_ratio(joined)))
    return segs


def dedupe_repeats(words: list[Word], max_n: int = 6, keep: int = 2) -> list[Word]:
    """Drop a phrase repeated back to back more than ``keep`` times, or more than
    once when it has ``loop_words`` words or more (a decoding loop)."""
    norm = [re.sub(r"\W+", "", w.text.lower()) for w in words]
    out_idx: list[int] = []
    i = 0
    while i < len(words):
        cut = False
        for n in range(1, max_n + 1):
            reps = 1
            while i + (reps + 1) * n <= len(words) and norm[i + reps * n : i + (reps + 1) * n] == norm[i : i + n]:
                reps += 1
            allowed = 1 if sum(map(bool, norm[i : i + n])) >= TH.loop_words else keep  # punctuation is no word
            if reps > allowed and any(norm[i : i + n]):
                out_idx.extend(range(i, i + n * allowed))
                i += reps * n
                cut = True
                break
        if not cut:
            out_idx.append(i)
            i += 1
    return [words[k] for k in out_idx]


# Whisper gives punctuation as tokens of their own ("день", ","); people write it
# on the word: closing marks join the word before, opening marks the word after.
CLOSING = set(".,!?:;…»)]}%")
OPENING = set("«([{")


def attach_punctuation(words: list[Word]) -> list[Word]:
    """Words with their punctuation on them, so text reads "день, магазин." (a mark
    after one the word already ends with is dropped: "помочь?." -> "помочь?"); a
    hyphenated tail Whisper gives as a word of its own joins the word before it
    ("как" "-то" -> "как-то", "real" "-time" -> "real-time")."""
    out: list[Word] = []
    opening = ""
    for w in words:
        if out and not opening and len(w.text) > 1 and w.text[0] == "-" and w.text[1].isalnum():
            last = out[-1]
            out[-1] = Word(last.start, w.end, last.text + w.text, min(last.probability, w.probability))
            continue
        if w.text and set(w.text) <= OPENING:
            opening += w.text
            continue
        if w.text and set(w.text) <= CLOSING:
            if out and not opening:
                last = out[-1]
                text = last.text if last.text[-1] in ".!?…,;:" and w.text in (".", ",") else last.text + w.text
                out[-1] = Word(last.start, last.end, text, last.probability)
            continue  # a closing mark with no word before it in this channel says nothing
        out.append(Word(w.start, w.end, opening + w.text, w.probability) if opening else w)
        opening = ""
    return out


def split_turns(words: list[Word], speaker: str, channel: int, pause: float = TH.turn_pause_s) -> list[Utterance]:
    """One utterance per run of words without a pause of ``pause`` seconds or more,
    punctuation attached to its words."""
    out: list[Utterance] = []
    cur: list[Word] = []
    for w in attach_punctuation(words):
        if cur and w.start - cur[-1].end >= pause:
            out.append(utterance(cur, speaker, channel))
            cur = []
        cur.append(w)
    if cur:
        out.append(utterance(cur, speaker, channel))
    return out


def utterance(words: list[Word], speaker: str, channel: int) -> Utterance:
    text = re.sub(r"\s+", " ", " ".join(w.text for w in words)).strip()
    return Utterance(speaker=speaker, start=words[0].start, end=words[-1].end, text=text, channel=channel, words=list(words))


# A segment Whisper calls "no speech" is dropped only when the audio agrees
# (TH.speech_evidence). Whisper's no_speech_prob alone threw away real speech in
# unfamiliar voices; its other verdicts (low confidence, loops, known credits)
# still hold, or garbage would be kept.


def clear(seg: Seg) -> bool:
    return mean_word_prob(seg) >= TH.clear_words


def channel_words(decoded: list[tuple[Packed, list[Seg]]], evidence: list[np.ndarray], n: int) -> list[list[Word]]:
    """Each of ``n`` streams' words in call time; hallucinated segments are dropped,
    "no speech" ones only if ``evidence`` (per stream, Silero's per-frame speech
    probability) agrees."""
    fs = FRAME / SAMPLE_RATE
    words: list[list[Word]] = [[] for _ in range(n)]
    last: dict[int, float] = {}  # per stream, where its last spoken word ended
    for w, ss in decoded:
        for seg in ss:
            mapped = [w.span_to_original(x.start, x.end) for x in seg.words]
            why = is_hallucination(seg)
            if why == "no speech" and clear(seg):
                k, s, e = mapped[0][2], mapped[0][0], mapped[-1][1]
                probs = evidence[k][int(s / fs) : max(int(e / fs), int(s / fs) + 1)]
                if probs.size and float(probs.mean()) >= TH.speech_evidence:
                    why = is_hallucination(dataclasses.replace(seg, no_speech_prob=0.0))
                    if why is None:
                        log.debug("kept %r: Whisper says no speech, the audio says speech (%.2f)", seg.text, float(probs.mean()))
            if why:
                log.debug("dropped %r (%s)", seg.text, why)
                continue
            for x, (s, e, k) in zip(seg.words, mapped):
                if _SPOKEN.search(x.text):
                    last[k] = e
                elif k in last and last[k] <= s:
                    # a mark closes the word before it, even from a segment of its own:
                    # Whisper can hear a whole sentence as "." timed over its speech
                    s = e = last[k]
                words[k].append(Word(round(s, 3), round(max(e, s), 3), x.text, round(x.probability, 3)))
    return words


def coverage(regions: list[list[tuple[float, float]]], words: list[list[Word]],
             runs: list[list[tuple[float, float]]] | None = None, pauses: list[list[tuple[float, float]]] | None = None) -> Coverage:
    """Per channel, the detected speech (``regions``) against the recognised
    words: speech farther than ``heard_reach_s`` from every word is unheard, and
    so is each run of speech (``runs``, from ``regions.speech_runs``) that no
    word overlaps. A punctuation mark is no word heard: Whisper times a
    sentence's closing "." where the next sentence starts, and that mark alone
    kept a lost sentence (vosk's test.wav) from being decoded again. Nor is
    a word timed over many seconds all of them heard (``max_word_s``), nor a
    run heard by a word timed across a pause of digital silence after it
    (``pauses``, from ``regions.digital_pauses``): Whisper stretched
    «Платнейка» back over a client's «А МДФ лучше?» and the pause after it,
    and the question was lost without a warning."""
    speech = heard = 0.0
    unheard: list[Unheard] = []
    for channel, (rs, ws) in enumerate(zip(regions, words)):
        spoken = sorted((w.start, min(w.end, w.start + TH.max_word_s)) for w in ws if _SPOKEN.search(w.text))
        spans = [(a - TH.heard_reach_s, b + TH.heard_reach_s) for a, b in spoken]
        wordless = _wordless(runs[channel] if runs else [], sorted(_after_pauses(spoken, pauses[channel] if pauses else [])))
        for s, e in rs:
            speech += e - s
            cursor, missing = s, []
            for a, b in spans:
                if b <= cursor:
                    continue
                if a >= e:
                    break
                if a > cursor:
                    missing.append((cursor, min(a, e)))
                cursor = max(cursor, b)
                if cursor >= e:
                    break
            if cursor < e:
                missing.append((cursor, e))
            missing = [(a, b) for a, b in missing if b - a >= TH.heard_reach_s]
            # a wordless run adds a stretch of its own, but never moves one found by reach:
            # that one is decoded again as before (moved, its second decoding read other words)
            missing = sorted(missing + [(max(a, s), min(b, e)) for a, b in wordless
                                        if a < e and b > s and not any(a < y and b > x for x, y in missing)])
            heard += (e - s) - sum(b - a for a, b in missing)
            unheard += [Unheard(channel, round(a, 2), round(b, 2)) for a, b in missing]
    return Coverage(round(speech, 2), round(heard, 2), sorted(unheard, key=lambda u: (u.start, u.channel)))


def _after_pauses(spoken: list[tuple[float, float]], pauses: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each word (start, end) from the end of the last pause (sorted) inside
    it: where Whisper's word times cross such a pause, it stretched the start
    back over the silence (a VoIP line sent nothing there to speak across)."""
    if not pauses or not spoken:
        return spoken
    starts, ends = np.array(pauses).T
    a, b = np.array(spoken).T
    k = np.searchsorted(ends, b, side="left") - 1  # the last pause that ends before each word does
    inside = (k >= 0) & (starts[np.maximum(k, 0)] >= a)
    return list(zip(np.where(inside, ends[np.maximum(k, 0)], a).tolist(), b.tolist()))


def _wordless(runs: list[tuple[float, float]], spoken: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The runs that no word (start, end; sorted by start) overlaps."""
    if not spoken:
        return list(runs)
    starts = np.array([a for a, _ in spoken])
    reach = np.maximum.accumulate(np.array([b for _, b in spoken]))  # the latest end of the words so far
    out = []
    for a, b in runs:
        k = int(np.searchsorted(starts, b, side="left"))  # the words that start before the run ends...
        if k == 0 or reach[k - 1] <= a:  # ...all end before it starts
            out.append((a, b))
    return out

