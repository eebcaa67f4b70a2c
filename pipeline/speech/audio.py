"""Read call recordings: check them, decode them to 16 kHz channels, make
compressed listening copies and short clips.

Decoding goes through ffmpeg (the system binary, or the one imageio-ffmpeg
ships when none is on PATH), so every container ffmpeg knows works: wav, mp3,
ogg/opus, m4a, amr, ...
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import ffmpeg
import numpy as np

from pipeline.errors import AudioError
from pipeline.speech.transcript import CLIENT, OPERATOR, UNKNOWN

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # what Whisper wants
DEFAULT_MAX_DURATION_S = 4 * 3600.0
# A decode shorter than this share of the duration the header declares means
# the file was cut (an interrupted upload or copy).
_TRUNCATED_SHARE = 0.9


@dataclass
class AudioInfo:
    path: Path
    format_name: str
    codec: str
    duration: float
    channels: int
    sample_rate: int
    # Set by decode() when the file ends before its header says it should;
    # the good part is still decoded and used.
    truncated: bool = False


@dataclass
class DecodedAudio:
    info: AudioInfo
    channels: list[np.ndarray]  # 16 kHz float32 mono arrays, one per speaker
    speakers: list[str]
    sample_rate: int = SAMPLE_RATE
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return max((len(c) for c in self.channels), default=0) / self.sample_rate


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary: the system one, else the one imageio-ffmpeg ships."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise AudioError(
            "ffmpeg was not found: install it (apt install ffmpeg) or `pip install imageio-ffmpeg`"
        ) from exc


def ffprobe_exe() -> str | None:
    """The ffprobe binary beside a system ffmpeg; None when only imageio-ffmpeg is there."""
    return shutil.which("ffprobe")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path.name}: file not found ({path})")
    if not path.is_file():
        raise AudioError(f"{path.name}: not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: the file is empty (0 bytes)")


def _last_line(stderr: bytes | str | None) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown ffmpeg error"


def _probe_ffprobe(path: Path, exe: str) -> AudioInfo:
    try:
        data = ffmpeg.probe(str(path), cmd=exe)
    except ffmpeg.Error as exc:
        raise AudioError(f"{path.name}: not a readable audio file ({_last_line(exc.stderr)})") from None
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioError(f"{path.name}: contains no audio stream (is it an audio recording?)")
    st = streams[0]
    fmt = data.get("format", {})
    duration = st.get("duration") or fmt.get("duration") or 0.0
    return AudioInfo(
        path=path,
        format_name=fmt.get("format_name", ""),
        codec=st.get("codec_name", ""),
        duration=float(duration),
        channels=int(st.get("channels") or 0),
        sample_rate=int(st.get("sample_rate") or 0),
    )


_INPUT_RE = re.compile(r"Input #0, ([^,]+(?:,[^,\s]+)*), from")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM_RE = re.compile(r"Stream #0:\d+.*?: Audio: ([\w\-]+).*?, (\d+) Hz, ([^,]+)")
_TIME_RE = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "7.1": 8}


def _probe_by_decoding(path: Path) -> AudioInfo:
    """imageio-ffmpeg ships no ffprobe: read what `ffmpeg -i` prints while decoding to null."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path), "-vn", "-f", "null", "-"],
        capture_output=True,
    )
    err = proc.stderr.decode("utf-8", "replace")
    stream = _STREAM_RE.search(err)
    if not stream:
        raise AudioError(f"{path.name}: not a readable audio file ({_last_line(err)})")
    fmt = _INPUT_RE.search(err)
    layout = stream.group(3).strip()
    m = re.match(r"(\d+) channels", layout)
    channels = int(m.group(1)) if m else _LAYOUT_CHANNELS.get(layout.split("(")[0], 2)
    times = _TIME_RE.findall(err)  # the decoded length, the last progress line
    d = _DURATION_RE.search(err)
    hms = times[-1] if times else (d.groups() if d else ("0", "0", "0"))
    duration = int(hms[0]) * 3600 + int(hms[1]) * 60 + float(hms[2])
    return AudioInfo(
        path=path,
        format_name=fmt.group(1) if fmt else "",
        codec=stream.group(1),
        duration=duration,
        channels=channels,
        sample_rate=int(stream.group(2)),
    )


def probe(path: str | os.PathLike, max_duration_s: float | None = DEFAULT_MAX_DURATION_S) -> AudioInfo:
    """Check a recording and describe it; raise AudioError naming the file and the problem."""
    path = Path(path)
    _check_file(path)
    exe = ffprobe_exe()
    info = _probe_ffprobe(path, exe) if exe else _probe_by_decoding(path)
    if info.channels < 1 or info.sample_rate < 1:
        raise AudioError(f"{path.name}: the audio stream has no channels or no sample rate (damaged file?)")
    if info.duration <= 0.0:
        raise AudioError(f"{path.name}: the recording is 0 seconds long (no audio in it)")
    if max_duration_s and info.duration > max_duration_s:
        raise AudioError(
            f"{path.name}: the recording is {info.duration / 60:.0f} min long, more than the "
            f"{max_duration_s / 60:.0f} min limit (CALLREVIEW_MAX_DURATION_S)"
        )
    return info


# Two channels this alike carry one signal: a mono recording saved as stereo (a
# PBX or a converter duplicating the mix). Separate operator and client lines
# correlate far below this even with echo; see docs/benchmarks.md.
SAME_SIGNAL_CORR = 0.95


def channel_correlation(a: np.ndarray, b: np.ndarray, step: int = 4) -> float:
    """Pearson correlation of two channels' samples (every ``step``-th, which is
    plenty for this and keeps a long call cheap); 0.0 when either is silent."""
    n = min(len(a), len(b))
    x, y = a[:n:step].astype(np.float64), b[:n:step].astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y)) / denom if denom > 1e-9 else 0.0


def _speakers(n: int, operator_channel: str) -> list[str]:
    if n == 1:
        return [UNKNOWN]
    if operator_channel not in ("left", "right"):
        raise ValueError(f"operator_channel must be 'left' or 'right', not {operator_channel!r}")
    return [OPERATOR, CLIENT] if operator_channel == "left" else [CLIENT, OPERATOR]


LAYOUTS = ("auto", "stereo", "mono")


def decode(
    path: str | os.PathLike,
    operator_channel: str = "left",
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    layout: str = "auto",
) -> DecodedAudio:
    """Decode a recording to 16 kHz float32 channels: stereo gives operator and
    client (per ``operator_channel``), mono one "unknown" channel, more than two
    channels their first two. Two channels that carry the same signal are one mono
    call, so its speech is not transcribed twice. ``layout`` overrides that guess
    for a batch the user knows: "stereo" keeps two channels however alike they
    are, "mono" mixes them down. A truncated file is decoded up to where it is good."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    info = probe(path, max_duration_s)
    path = info.path
    n = 1 if info.channels == 1 or layout == "mono" else 2
    out_kwargs = dict(format="f32le", acodec="pcm_f32le", ar=SAMPLE_RATE, ac=n)
    if info.channels > 2 and n == 2:
        out_kwargs["af"] = "pan=stereo|c0=c0|c1=c1"  # keep the first two, do not downmix
    if max_duration_s:
        out_kwargs["t"] = max_duration_s
    stream = ffmpeg.input(str(path)).output("pipe:", **out_kwargs).global_args("-nostdin", "-hide_banner", "-v", "error")
    proc = subprocess.run(stream.compile(cmd=ffmpeg_exe()), capture_output=True)
    raw = proc.stdout
    samples = np.frombuffer(raw[: len(raw) // (4 * n) * 4 * n], dtype=np.float32)
    if proc.returncode != 0 and samples.size == 0:
        raise AudioError(f"{path.name}: cannot be decoded ({_last_line(proc.stderr)})")
    if samples.size == 0:
        raise AudioError(f"{path.name}: decodes to no audio at all (damaged or empty recording)")
    data = samples.reshape(-1, n).T.copy()
    decoded_s = data.shape[1] / SAMPLE_RATE
    warnings = []
    if proc.returncode != 0 or decoded_s < info.duration * _TRUNCATED_SHARE - 0.5:
        info.truncated = decoded_s < info.duration * _TRUNCATED_SHARE - 0.5 or proc.returncode != 0
        msg = (
            f"{path.name}: the file is damaged or cut short; decoded {decoded_s:.1f} s of "
            f"{info.duration:.1f} s ({_last_line(proc.stderr) if proc.stderr else 'data ends early'})"
        )
        log.warning(msg)
        warnings.append(msg)
    if decoded_s < 0.05:
        raise AudioError(f"{path.name}: decodes to {decoded_s:.2f} s of audio, too short to use")
    info.duration = decoded_s
    chans = [np.ascontiguousarray(c, dtype=np.float32) for c in data]
    if n == 2 and layout == "auto" and channel_correlation(chans[0], chans[1]) >= SAME_SIGNAL_CORR:
        log.info("%s: both channels carry the same signal; decoded as one mono call", path.name)
        chans, n = [chans[0]], 1
    return DecodedAudio(info=info, channels=chans, speakers=_speakers(n, operator_channel), warnings=warnings)


def make_listening_copy(src: str | os.PathLike, dest_path: str | os.PathLike, bitrate_kbps: int | None = None) -> Path:
    """Write a compressed Ogg Opus copy for the review app (stereo kept, ~32 kbps
    stereo / 24 kbps mono); written to a temp file and renamed, so never half-written."""
    src, dest = Path(src), Path(dest_path)
    info = probe(src, max_duration_s=None)
    n = 1 if info.channels == 1 else 2
    kbps = bitrate_kbps or (32 if n == 2 else 24)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ogg", dir=dest.parent)
    os.close(fd)
    # No tags, chapters or muxer/encoder names: a listener downloads this file and must
    # not read the source's title, artist or comment (who called whom) in it.
    out_kwargs = dict(format="ogg", acodec="libopus", ac=n, ar=48000, application="voip", vbr="constrained",
                      map_metadata=-1, map_chapters=-1, fflags="+bitexact")
    out_kwargs["flags:a"] = "+bitexact"
    out_kwargs["b:a"] = f"{kbps}k"
    if info.channels > 2:
        out_kwargs["af"] = "pan=stereo|c0=c0|c1=c1"
    try:
        stream = ffmpeg.input(str(src)).output(tmp, **out_kwargs).global_args("-nostdin", "-hide_banner", "-v", "error", "-y")
        proc = subprocess.run(stream.compile(cmd=ffmpeg_exe()), capture_output=True)
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            raise AudioError(f"{src.name}: cannot make a listening copy ({_last_line(proc.stderr)})")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the app may run as another user
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def clip(path: str | os.PathLike, start: float, end: float, fmt: str = "ogg") -> bytes:
    """A short clip [start, end) seconds of a recording, as Ogg Opus ("ogg") or "mp3" bytes."""
    from pydub import AudioSegment

    path = Path(path)
    _check_file(path)
    if end <= start or start < 0:
        raise AudioError(f"{path.name}: bad clip range {start:.2f}-{end:.2f} s")
    AudioSegment.converter = ffmpeg_exe()
    try:
        seg = AudioSegment.from_file(str(path), start_second=start, duration=end - start)
    except Exception as exc:
        raise AudioError(f"{path.name}: cannot cut a clip at {start:.1f}-{end:.1f} s ({exc})") from None
    if len(seg) == 0:
        raise AudioError(f"{path.name}: nothing to play at {start:.1f}-{end:.1f} s (past the end?)")
    buf = io.BytesIO()
    if fmt == "ogg":
        seg.export(buf, format="ogg", codec="libopus", bitrate="32k")
    elif fmt == "mp3":
        seg.export(buf, format="mp3", bitrate="48k")
    else:
        raise ValueError(f"clip format must be 'ogg' or 'mp3', not {fmt!r}")
    return buf.getvalue()
