"""Synthetic Russian phone calls for demos and tests.

Speech comes from Debian festival (voice ``msu_ru_nsh_clunits``); the client is
the same voice shifted up in pitch with sox, so the two speakers differ. Calls
are stereo (operator left, client right) at 8 kHz with telephone realism:
band-pass 300-3400 Hz, G.711 mu-law round trip and light line noise. Every
random choice is seeded, so the same YAML gives the same calls.

    python data/synthesize.py data/demo/dialogues.yaml --out data/demo/

Needs the system tools ``text2wave`` (festival + festvox-ru), ``sox``,
``ffmpeg`` (for .mp3/.ogg/.m4a) and, for :func:`synth_espeak`, ``espeak-ng``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

CALL_SR = 8000
OPERATOR_CHANNEL = 0  # left
CLIENT_CHANNEL = 1  # right
FESTIVAL_VOICE = "voice_msu_ru_nsh_clunits"
CLIENT_PITCH_CENTS = 400
FORMATS = ("wav", "mp3", "ogg", "m4a")
# Bump when synthesis changes, so stale cache entries are not reused.
_CACHE_VERSION = "1"


class SynthesisError(RuntimeError):
    """A synthesis tool is missing or failed; the message says which and how to fix it."""


# ---------------------------------------------------------------- text

_ONES_M = ["", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"]
_ONES_F = ["", "одна", "две"] + _ONES_M[3:]
_TEENS = ["десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать",
          "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать"]
_TENS = ["", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
         "восемьдесят", "девяносто"]
_HUNDREDS = ["", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
             "восемьсот", "девятьсот"]
_SCALES = [("", "", "", False), ("тысяча", "тысячи", "тысяч", True),
           ("миллион", "миллиона", "миллионов", False), ("миллиард", "миллиарда", "миллиардов", False)]

_LATIN = {
    "a": "а", "b": "б", "c": "к", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х", "i": "и",
    "j": "дж", "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "к", "r": "р",
    "s": "с", "t": "т", "u": "у", "v": "в", "w": "в", "x": "кс", "y": "й", "z": "з",
}


def _triple_words(n: int, feminine: bool) -> list[str]:
    ones = _ONES_F if feminine else _ONES_M
    words = [_HUNDREDS[n // 100]]
    rest = n % 100
    if 10 <= rest < 20:
        words.append(_TEENS[rest - 10])
    else:
        words += [_TENS[rest // 10], ones[rest % 10]]
    return [w for w in words if w]


def number_to_words(n: int) -> str:
    """Russian cardinal number in words, nominative (``2500`` -> ``две тысячи пятьсот``)."""
    if n == 0:
        return "ноль"
    if n < 0:
        return "минус " + number_to_words(-n)
    parts: list[str] = []
    for one, few, many, feminine in _SCALES:
        n, triple = divmod(n, 1000)
        if triple:
            words = _triple_words(triple, feminine)
            if one:
                last2, last = triple % 100, triple % 10
                if 10 <= last2 < 20 or last == 0 or last >= 5:
                    words.append(many)
                elif last == 1:
                    words.append(one)
                else:
                    words.append(few)
            parts = words + parts
        if not n:
            break
    if n:
        raise ValueError("number too large to spell")
    return " ".join(parts)


def festival_text(text: str) -> str:
    """Text festival's Russian voice can read: lower-case Cyrillic, numbers in words.

    Its letter-to-sound rules know only lower-case Cyrillic, and other characters
    make it skip words or fail, so digits are spelled, Latin is transliterated
    letter by letter and everything else but phrase punctuation is dropped.
    """
    text = text.lower()
    text = re.sub(r"\d+", lambda m: f" {number_to_words(int(m.group()))} ", text)
    text = "".join(_LATIN.get(ch, ch) for ch in text)
    text = re.sub(r"[:;—–…]", ",", text)
    text = re.sub(r"[^а-яё,.?! \-]", " ", text)
    text = re.sub(r"(?<![а-яё])-|-(?![а-яё])", " ", text)  # keep only word-internal hyphens
    text = re.sub(r"\s+([,.?!])", r"\1", text)
    text = re.sub(r"([,.?!])[,.?!]+", r"\1", text)
    text = re.sub(r"([,.?!])(?=[а-яё])", r"\1 ", text)  # "дом? ...тридцать" must not become "дом?тридцать": festival fails on it
    text = re.sub(r"\s+", " ", text).strip(" ,")
    return text


# ---------------------------------------------------------------- audio helpers

def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SynthesisError(f"'{name}' is not installed; install the Debian package '{package}' "
                             f"(apt-get install {package}).")
    return path


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path:
        return path
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # noqa: BLE001 - any failure means "no ffmpeg"
        raise SynthesisError("ffmpeg is not installed; apt-get install ffmpeg "
                             "(or pip install imageio-ffmpeg).") from exc


def _run(cmd: Sequence[str], stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-600:]
        raise SynthesisError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {err}")
    return proc.stdout


def read_wav(data: bytes | str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read 16-bit PCM WAV (bytes or path) as float32 in [-1, 1], shape [n] or [channels, n]."""
    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with wave.open(src, "rb") as w:
        if w.getsampwidth() != 2:
            raise SynthesisError("expected 16-bit PCM WAV")
        channels, sr = w.getnchannels(), w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = pcm.astype(np.float32) / 32768.0
    if channels > 1:
        audio = audio.reshape(-1, channels).T.copy()
    return audio, sr


def _to_pcm16(audio: np.ndarray) -> bytes:
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
    return pcm.T.tobytes()  # interleaved frames


def _wav_bytes(audio: np.ndarray, sr: int) -> bytes:
    audio = np.atleast_2d(audio)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(audio.shape[0])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(_to_pcm16(audio))
    return buf.getvalue()


def trim_silence(audio: np.ndarray, sr: int, rel_db: float = -40.0, pad_s: float = 0.01) -> np.ndarray:
    """Cut leading and trailing silence (10 ms frames below ``rel_db`` of the peak)."""
    frame = max(1, int(sr * 0.01))
    n = len(audio) // frame
    if n == 0:
        return audio
    peaks = np.abs(audio[: n * frame]).reshape(n, frame).max(axis=1)
    loud = np.flatnonzero(peaks > peaks.max() * 10 ** (rel_db / 20))
    if loud.size == 0:
        return audio[:0]
    pad = int(sr * pad_s)
    start = max(0, loud[0] * frame - pad)
    end = min(len(audio), (loud[-1] + 1) * frame + pad)
    return audio[start:end]


def _cache_dir() -> Path:
    root = os.environ.get("CALLREVIEW_SYNTH_CACHE") or Path(tempfile.gettempdir()) / "callreview-synth"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- speech

def synth_speech(text: str, speaker: str = "operator", cache: bool = True) -> tuple[np.ndarray, int]:
    """Festival Russian speech for one utterance, silence trimmed: (float32 mono, sample rate).

    ``speaker="client"`` is the same voice shifted up by ``CLIENT_PITCH_CENTS``.
    Results are cached per (text, speaker) under ``$CALLREVIEW_SYNTH_CACHE``
    (default: the system temp dir), because festival takes about a second a sentence.
    """
    if speaker not in ("operator", "client"):
        raise ValueError(f"speaker must be 'operator' or 'client', not {speaker!r}")
    said = festival_text(text)
    if not re.search("[а-яё]", said):
        raise ValueError(f"nothing festival can pronounce in {text!r}")
    key = hashlib.sha1(f"{_CACHE_VERSION}|{FESTIVAL_VOICE}|{speaker}|{said}".encode()).hexdigest()
    cached = _cache_dir() / f"{key}.wav" if cache else None
    if cached is not None and cached.exists():
        return read_wav(cached)

    text2wave = _tool("text2wave", "festvox-ru")
    sox = _tool("sox", "sox")
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        txt, raw, out = Path(tmp, "in.txt"), Path(tmp, "raw.wav"), Path(tmp, "out.wav")
        txt.write_text(said + "\n", encoding="utf-8")
        _run([text2wave, "-eval", f"({FESTIVAL_VOICE})", str(txt), "-o", str(raw)])
        effects = ["pitch", str(CLIENT_PITCH_CENTS)] if speaker == "client" else []
        _run([sox, str(raw), "-b", "16", str(out), *effects])
        audio, sr = read_wav(out.read_bytes())
    audio = trim_silence(audio, sr)
    if audio.size == 0:
        raise SynthesisError(f"festival produced silence for {said!r}")
    if cached is not None:
        tmp_path = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp_path.write_bytes(_wav_bytes(audio, sr))
        os.replace(tmp_path, cached)  # atomic: parallel test workers may race
    return audio, sr


def synth_espeak(text: str, voice: str = "ru") -> tuple[np.ndarray, int]:
    """espeak-ng Russian speech, silence trimmed: (float32 mono, sample rate).

    Whisper does not understand it at 8 kHz, which makes it a "must not
    hallucinate" input: speech-like sound that should yield (almost) no words.
    """
    espeak = _tool("espeak-ng", "espeak-ng")
    data = _run([espeak, "-v", voice, "--stdout", text.lower()])
    audio, sr = read_wav(data)
    return trim_silence(audio, sr), sr


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (scipy), float32 out."""
    if sr_in == sr_out:
        return audio.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(audio, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


# ---------------------------------------------------------------- telephone line

def mulaw_encode(audio: np.ndarray) -> np.ndarray:
    """G.711 mu-law encode float audio in [-1, 1] to uint8 codes (ITU-T segment tables)."""
    bias, clip = 0x84, 32635
    s = np.clip(np.round(np.asarray(audio) * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(s < 0, 0x80, 0)
    s = np.minimum(np.abs(s), clip) + bias
    exponent = np.floor(np.log2(np.maximum(s >> 7, 1))).astype(np.int32)
    mantissa = (s >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 mu-law decode uint8 codes to float32 in [-1, 1]."""
    u = ~codes.astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    s = ((((u & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return (np.where(u & 0x80, -s, s) / 32768.0).astype(np.float32)


def telephone_line(audio: np.ndarray, sr: int = CALL_SR, noise_db: float = -52.0,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """Make clean 8 kHz audio sound like a phone line: light noise, 300-3400 Hz, mu-law."""
    from scipy.signal import butter, sosfiltfilt

    rng = rng or np.random.default_rng(0)
    noisy = audio + rng.normal(0.0, 10 ** (noise_db / 20), size=audio.shape)
    high = min(3400.0, sr / 2 * 0.95)
    sos = butter(6, [300.0, high], btype="bandpass", fs=sr, output="sos")
    band = sosfiltfilt(sos, noisy, axis=-1)  # zero phase: turn times stay true
    return mulaw_decode(mulaw_encode(band))


def line_echo(channels, sr: int, gain_db: float, delay_ms: float) -> list[np.ndarray]:
    """A two-line call with each side's echo in the other's channel, as on real
    recordings (hybrid echo, headset crosstalk): the other side's signal,
    band-limited to 300-3400 Hz, delayed and attenuated by ``gain_db``."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300.0, min(3400.0, sr / 2 * 0.95)], btype="bandpass", fs=sr, output="sos")
    shift, g = int(delay_ms / 1000 * sr), 10 ** (gain_db / 20)
    leaked = [np.concatenate([np.zeros(shift, np.float32), sosfilt(sos, c)[: len(c) - shift].astype(np.float32)]) for c in channels]
    return [np.clip(channels[0] + g * leaked[1], -1, 1).astype(np.float32), np.clip(channels[1] + g * leaked[0], -1, 1).astype(np.float32)]


# ---------------------------------------------------------------- calls

def _turn_fields(turn) -> tuple[str, str, str | None]:
    if isinstance(turn, dict):
        return turn["speaker"], turn["text"], turn.get("step")
    speaker, text, *rest = turn
    return speaker, text, (rest[0] if rest else None)


def build_call(turns: Iterable, gap: tuple[float, float] = (0.3, 1.0), telephone: bool = True,
               seed: int = 0, overlap_prob: float = 0.12, lead_s: float = 0.6,
               tail_s: float = 0.6) -> tuple[np.ndarray, list[dict]]:
    """Stereo call at ``CALL_SR`` (operator channel 0 = left, client 1 = right) and its reference.

    ``turns`` are dicts ``{"speaker", "text", "step"}`` (or tuples in that order).
    Turns follow each other after a seeded random pause drawn from ``gap``; with
    probability ``overlap_prob`` a reply from the other speaker starts a little
    before the previous turn ends. The reference gives, per turn, the seconds
    where its speech really starts and ends in the returned audio.
    """
    rng = np.random.default_rng(seed)
    placed: list[tuple[int, np.ndarray, dict]] = []
    cursor = 0.0
    last_speaker = None
    for i, turn in enumerate(turns):
        speaker, text, step = _turn_fields(turn)
        audio, sr = synth_speech(text, speaker)
        audio = resample(audio, sr, CALL_SR)
        # Different speakers, slightly different levels, as on a real line.
        level = (0.55 if speaker == "operator" else 0.42) * rng.uniform(0.85, 1.0)
        audio = audio / max(float(np.abs(audio).max()), 1e-6) * level
        if i == 0:
            start = lead_s
        elif speaker != last_speaker and rng.random() < overlap_prob:
            start = max(cursor - rng.uniform(0.15, 0.45), placed[-1][0] / CALL_SR + 0.5)
        else:
            start = cursor + rng.uniform(*gap)
        offset = int(round(start * CALL_SR))
        ref = {"speaker": speaker, "start": round(offset / CALL_SR, 3),
               "end": round((offset + len(audio)) / CALL_SR, 3), "text": text, "step": step}
        placed.append((offset, audio, ref))
        cursor = max(cursor, (offset + len(audio)) / CALL_SR)
        last_speaker = speaker
    if not placed:
        raise ValueError("a call needs at least one turn")
    total = int(round((cursor + tail_s) * CALL_SR))
    stereo = np.zeros((2, total), dtype=np.float64)
    for offset, audio, ref in placed:
        ch = OPERATOR_CHANNEL if ref["speaker"] == "operator" else CLIENT_CHANNEL
        stereo[ch, offset: offset + len(audio)] += audio
    if telephone:
        # Each channel is its own line leg, with its own noise.
        stereo = telephone_line(stereo, CALL_SR, rng=rng)
    return stereo.astype(np.float32), [ref for _, _, ref in placed]


_CODECS = {
    # joint stereo off: mid/side coding would leak one speaker into the other channel
    "mp3": ["-c:a", "libmp3lame", "-b:a", "24k", "-joint_stereo", "0"],
    "ogg": ["-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
    "opus": ["-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
    "m4a": ["-c:a", "aac", "-b:a", "24k"],
    "flac": ["-c:a", "flac"],
}


def write_call(path: str | os.PathLike, audio: np.ndarray, sr: int = CALL_SR) -> Path:
    """Write audio ([n] or [channels, n], float in [-1, 1]) in the format its extension names.

    .wav is 16-bit PCM; .mp3, .ogg (Opus), .m4a (AAC) and .flac go through ffmpeg.
    """
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext == "wav":
        path.write_bytes(_wav_bytes(audio, sr))
        return path
    if ext not in _CODECS:
        raise ValueError(f"unsupported extension .{ext}; use one of .wav, " +
                         ", ".join(f".{e}" for e in _CODECS))
    cmd = [_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "s16le", "-ar", str(sr), "-ac", str(audio.shape[0]), "-i", "-",
           *_CODECS[ext], "-map_metadata", "-1", "-fflags", "+bitexact", str(path)]
    _run(cmd, stdin=_to_pcm16(audio))
    return path


# ---------------------------------------------------------------- CLI

def build_from_yaml(yaml_path: str | os.PathLike, out_dir: str | os.PathLike,
                    only: Sequence[str] = (), fmt: str | None = None, log=print) -> list[dict]:
    """Build every call of a dialogues YAML into ``out_dir``: audio, ``<id>.json``, metadata.csv."""
    import yaml

    spec = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shop = spec.get("shop", "")
    written = []
    for i, call in enumerate(spec["calls"]):
        if only and call["id"] not in only:
            continue
        ext = (fmt or call.get("format", "wav")).lower()
        audio, turns = build_call(call["turns"], seed=int(call.get("seed", i)))
        name = f"{call['id']}.{ext}"
        write_call(out / name, audio, CALL_SR)
        speech = sum(t["end"] - t["start"] for t in turns)
        ref = {
            "call_id": call["id"],
            "file": name,
            "format": ext,
            "sample_rate": CALL_SR,
            "channels": {"operator": OPERATOR_CHANNEL, "client": CLIENT_CHANNEL},
            "duration": round(audio.shape[1] / CALL_SR, 3),
            "speech_seconds": round(speech, 3),
            "shop": shop,
            "operator": call["operator"],
            "phone": call.get("phone", ""),
            "date": str(call.get("date", "")),
            "situation": call.get("situation", ""),
            "seed": int(call.get("seed", i)),
            "turns": turns,
        }
        (out / f"{call['id']}.json").write_text(
            json.dumps(ref, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(ref)
        log(f"{name}: {ref['duration']:.1f} s, {len(turns)} turns, {speech:.1f} s speech, "
            f"{(out / name).stat().st_size / 1024:.0f} KiB")
    if not only:
        with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["file", "operator", "phone", "date"])
            for ref in written:
                w.writerow([ref["file"], ref["operator"], ref["phone"], ref["date"]])
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build synthetic Russian phone calls (festival voice, stereo, 8 kHz telephone "
                    "band) and their reference JSON from a dialogues YAML.")
    parser.add_argument("dialogues", nargs="?", help="YAML file with a 'calls' list (see data/README.md)")
    parser.add_argument("--out", default="data/demo", help="output folder (default: data/demo)")
    parser.add_argument("--only", action="append", default=[], metavar="CALL_ID",
                        help="build only this call (repeatable); metadata.csv is then left alone")
    parser.add_argument("--format", choices=FORMATS, help="override every call's audio format")
    parser.add_argument("--say", metavar="TEXT",
                        help="instead: synthesize TEXT as one utterance into --out (a file path)")
    parser.add_argument("--speaker", choices=("operator", "client"), default="operator",
                        help="voice for --say")
    args = parser.parse_args(argv)
    try:
        if args.say:
            audio, sr = synth_speech(args.say, args.speaker)
            write_call(args.out, audio, sr)
            return 0
        if not args.dialogues:
            parser.error("give a dialogues YAML file (or --say TEXT)")
        build_from_yaml(args.dialogues, args.out, only=args.only, fmt=args.format)
    except (SynthesisError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
