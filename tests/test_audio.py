"""pipeline/speech/audio.py on real files made here: formats, channels, bad inputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import AudioError
from pipeline.hashing import file_sha256
from pipeline.speech import audio


@pytest.fixture(scope="module")
def stereo(synth):
    """4 s stereo at 8 kHz: a 440 Hz tone on the left, 880 Hz on the right."""
    t = np.arange(4 * 8000) / 8000
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 880 * t)]).astype(np.float32)


def _dominant_hz(x: np.ndarray, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x[: sr * 2]))
    return float(np.argmax(spec) * sr / (2 * len(spec) - 2))


@pytest.mark.parametrize("ext", ["wav", "mp3", "ogg", "m4a"])
def test_formats_decode_to_16k_channels(synth, stereo, tmp_path, ext):
    path = synth.write_call(tmp_path / f"call.{ext}", stereo, 8000)
    info = audio.probe(path)
    assert info.channels == 2 and 3.9 < info.duration < 4.2
    dec = audio.decode(path)
    assert dec.speakers == ["operator", "client"]
    assert len(dec.channels) == 2 and all(c.dtype == np.float32 for c in dec.channels)
    assert 3.9 < len(dec.channels[0]) / 16000 < 4.2
    # channels stay apart: left is the 440 Hz tone, right the 880 Hz one
    assert abs(_dominant_hz(dec.channels[0]) - 440) < 10
    assert abs(_dominant_hz(dec.channels[1]) - 880) < 10


def test_right_channel_operator(synth, stereo, tmp_path):
    path = synth.write_call(tmp_path / "call.wav", stereo, 8000)
    dec = audio.decode(path, operator_channel="right")
    assert dec.speakers == ["client", "operator"]


def test_mono_is_unknown_speaker(synth, stereo, tmp_path):
    path = synth.write_call(tmp_path / "mono.wav", stereo[0], 8000)
    dec = audio.decode(path)
    assert dec.speakers == ["unknown"] and len(dec.channels) == 1


def test_the_same_signal_on_both_channels_is_one_mono_call(synth, tmp_path):
    """A mono mix saved as stereo (identical, or one channel quieter and re-encoded)
    must not be transcribed twice, once as operator and once as client."""
    speech, _ref = synth.build_call([("operator", "здравствуйте, магазин техники"), ("client", "мне нужен холодильник")], seed=3)
    mix = speech.sum(axis=0).astype(np.float32)
    for name, pair in (("dup.wav", [mix, mix]), ("quieter.mp3", [mix, 0.4 * mix])):
        dec = audio.decode(synth.write_call(tmp_path / name, np.stack(pair), synth.CALL_SR))
        assert dec.speakers == ["unknown"] and len(dec.channels) == 1, name
    # a real two-line call (each speaker on a channel, silence between turns) stays stereo
    dec = audio.decode(synth.write_call(tmp_path / "call.wav", speech, synth.CALL_SR))
    assert dec.speakers == ["operator", "client"]
    assert audio.channel_correlation(*dec.channels) < 0.5


def test_the_user_can_force_the_layout_of_a_batch(synth, tmp_path):
    """--speakers stereo keeps two alike channels apart; --speakers mono mixes a
    two-line call down to one channel, with both voices in it."""
    speech, _ref = synth.build_call([("operator", "здравствуйте, магазин техники"), ("client", "мне нужен холодильник")], seed=3)
    mix = speech.sum(axis=0).astype(np.float32)
    dup = synth.write_call(tmp_path / "dup.wav", np.stack([mix, mix]), synth.CALL_SR)
    assert audio.decode(dup, layout="stereo").speakers == ["operator", "client"]
    assert audio.decode(dup, operator_channel="right", layout="stereo").speakers == ["client", "operator"]
    call = synth.write_call(tmp_path / "call.wav", speech, synth.CALL_SR)
    two, one = audio.decode(call), audio.decode(call, layout="mono")
    assert one.speakers == ["unknown"] and len(one.channels) == 1
    assert np.corrcoef(two.channels[0] + two.channels[1], one.channels[0])[0, 1] > 0.99  # both voices, at their own levels
    with pytest.raises(ValueError, match="layout"):
        audio.decode(call, layout="both")


def test_more_than_two_channels_keeps_first_two(tmp_path):
    path = tmp_path / "four.wav"
    ff = audio.ffmpeg_exe()
    srcs = []
    for hz in (440, 880, 1500, 2500):
        srcs += ["-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=8000:duration=3"]
    subprocess.run([ff, "-v", "error", *srcs, "-filter_complex", "amerge=inputs=4", str(path)], check=True)
    dec = audio.decode(path)
    assert len(dec.channels) == 2
    assert abs(_dominant_hz(dec.channels[0]) - 440) < 10 and abs(_dominant_hz(dec.channels[1]) - 880) < 10


def test_bad_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is a shopping list, not a recording\n" * 20)
    with pytest.raises(AudioError, match="empty.wav.*empty"):
        audio.decode(empty)
    with pytest.raises(AudioError, match="notes.wav.*not a readable audio"):
        audio.decode(text)
    with pytest.raises(AudioError, match="missing.wav.*not found"):
        audio.decode(tmp_path / "missing.wav")


def test_zero_second_audio(tmp_path):
    path = tmp_path / "zero.wav"
    subprocess.run([audio.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0", str(path)], check=True)
    with pytest.raises(AudioError, match="zero.wav.*0 seconds"):
        audio.decode(path)


def test_too_long_is_refused(synth, stereo, tmp_path):
    path = synth.write_call(tmp_path / "call.wav", stereo, 8000)
    with pytest.raises(AudioError, match="call.wav.*limit"):
        audio.decode(path, max_duration_s=2.0)


def test_truncated_mp3_decodes_the_good_part(synth, tmp_path):
    """Decision: a cut mp3 (an interrupted copy) is decoded up to where it is
    good and flagged ``truncated`` with a warning; the call is still usable."""
    t = np.arange(20 * 8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    full = synth.write_call(tmp_path / "full.mp3", np.stack([tone, tone]), 8000)
    cut = tmp_path / "cut.mp3"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    dec = audio.decode(cut)
    assert dec.info.truncated and dec.warnings and "cut.mp3" in dec.warnings[0]
    assert 7.0 < dec.duration < 13.0
    # a file cut to almost nothing is refused
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(data[:300])
    with pytest.raises(AudioError, match="stub.mp3"):
        audio.decode(stub)


def test_probe_without_ffprobe(synth, stereo, tmp_path, monkeypatch):
    """imageio-ffmpeg ships no ffprobe: probing falls back to decoding."""
    path = synth.write_call(tmp_path / "call.ogg", stereo, 8000)
    monkeypatch.setattr(audio, "ffprobe_exe", lambda: None)
    info = audio.probe(path)
    assert info.channels == 2 and info.codec == "opus" and 3.9 < info.duration < 4.2
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(AudioError, match="notes.wav"):
        audio.probe(text)


def test_listening_copy_and_clip(synth, stereo, tmp_path):
    src = synth.write_call(tmp_path / "call.wav", stereo, 8000)
    copy = audio.make_listening_copy(src, tmp_path / "out" / "call.ogg")
    info = audio.probe(copy)
    assert info.codec == "opus" and info.channels == 2 and abs(info.duration - 4.0) < 0.1
    assert copy.stat().st_size < 4 * 32000 / 8 * 1.3  # about 32 kbps
    ogg = audio.clip(src, 1.0, 2.5)
    assert ogg[:4] == b"OggS"
    mp3 = audio.clip(src, 1.0, 2.5, fmt="mp3")
    clip_path = tmp_path / "clip.mp3"
    clip_path.write_bytes(mp3)
    assert abs(audio.probe(clip_path).duration - 1.5) < 0.25  # mp3 adds encoder padding
    with pytest.raises(AudioError):
        audio.clip(src, 3.0, 2.0)


def test_the_listening_copy_keeps_no_tags_of_the_source(tmp_path):
    """A listener downloads the copy: the source's title, artist and comment (who
    called whom), and the m4a's brand and handler names, must not travel with it."""
    import json

    from pipeline.speech.audio import ffmpeg_exe

    src = tmp_path / "tagged.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-ar", "8000",
                    "-metadata", "title=call_99_secret_Ivan", "-metadata", "artist=Оператор Иван Петров",
                    "-metadata", "comment=caller +7 999 123-45-67", str(src)], check=True)
    m4a = Path(__file__).resolve().parent.parent / "data" / "demo" / "call_01_laptop_gift.m4a"
    for source in (src, m4a):
        copy = audio.make_listening_copy(source, tmp_path / f"{source.stem}.ogg")
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json", str(copy)],
                               capture_output=True, text=True, check=True)
        found = json.loads(probe.stdout)
        tags = {**found.get("format", {}).get("tags", {}), **{k: v for s in found.get("streams", []) for k, v in s.get("tags", {}).items()}}
        assert set(tags) <= {"encoder"}, tags  # the Opus codec's own vendor string only
        assert not any(word in " ".join(tags.values()) for word in ("Ivan", "Иван", "999", "Lavf"))


def test_file_sha256(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
