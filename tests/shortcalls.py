"""Short synthetic calls (5-10 s) for the batch and runner tests, and the bad
files a real upload folder holds. Made by data/synthesize.py (festival), so
the audio is generated, never committed; speech is cached between runs."""

from __future__ import annotations

import importlib.util
import shutil
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Distinct texts: recordings are deduplicated by content.
DIALOGUES = [
    [("operator", "здравствуйте, магазин техники, меня зовут анна"), ("client", "добрый день, мне нужен ноутбук")],
    [("operator", "добрый день, чем могу помочь"), ("client", "хочу купить роутер для дома")],
    [("operator", "здравствуйте, слушаю вас"), ("client", "сколько стоит доставка в другой город")],
    [("operator", "магазин техники, добрый вечер"), ("client", "у вас есть недорогой телефон")],
    [("operator", "здравствуйте, вы позвонили в магазин"), ("client", "я хочу оформить заказ на холодильник")],
    [("operator", "добрый день, меня зовут олег"), ("client", "подскажите, есть ли скидки на наушники")],
]
FORMATS = ["wav", "mp3", "ogg", "wav", "mp3", "wav"]


def _synth():
    spec = importlib.util.spec_from_file_location("callreview_synthesize", REPO / "data" / "synthesize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_short_calls(folder: Path, n: int = len(DIALOGUES)) -> list[Path]:
    """``n`` short stereo calls in ``folder`` (made once; later calls reuse them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"short_{i + 1:02d}.{FORMATS[i]}" for i in range(n)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        synth = _synth()
        for i, path in missing:
            audio, _ref = synth.build_call(DIALOGUES[i], seed=i, gap=(0.3, 0.6))
            synth.write_call(path, audio, synth.CALL_SR)
    return paths


def copy_calls(paths: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        out.append(Path(shutil.copy2(p, folder / p.name)))
    return out


def make_bad_files(folder: Path, good_mp3: Path) -> dict[str, str]:
    """Broken files of the kinds uploads contain; name -> what is wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("это не звук, а заметки менеджера\n" * 20, encoding="utf-8")
    data = good_mp3.read_bytes()
    (folder / "cut_header.mp3").write_bytes(data[:300])  # an upload interrupted at once: no audio frame left
    with wave.open(str(folder / "zero.wav"), "wb") as w:  # a valid header, 0 seconds of audio
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"")
    return {
        "empty.wav": "empty file",
        "notes.wav": "text renamed .wav",
        "cut_header.mp3": "truncated mp3",
        "zero.wav": "0-second audio",
    }


def make_truncated(good_mp3: Path, dest: Path) -> Path:
    """An mp3 cut in the middle: the good part is still usable."""
    data = good_mp3.read_bytes()
    dest.write_bytes(data[: len(data) * 6 // 10])
    return dest
