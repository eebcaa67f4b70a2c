"""Transcription of real human speech nobody on the team made: callreview against
the engines a user would pick instead, side by side in one run, same base weights.

    .venv/bin/python benchmarks/real_speech.py                # ../shared/realspeech
    .venv/bin/python benchmarks/real_speech.py --set /path/to/realspeech

Reads ``manifest.json`` of the set: each file's language and reference (its
README says how far each reference can be trusted: several are vendor ASR output
or a pinned Whisper-tiny string, not human transcripts). Files without a
reference or a known language are left out. Every engine gets the same decoded
16 kHz channels (``audio.decode``: a mono mix saved as two identical channels is
one channel) and runs in its own subprocess, so peak RSS is its own:

  openai-whisper    each channel whole, default settings (checkpoint converted
                    from the bundled CTranslate2 weights)
  faster-whisper    each channel whole, beam 5
  fw-batched        faster-whisper's BatchedInferencePipeline: beam 5, its
                    default Silero VAD, batch 8 (the peer a user would pick)
  callreview        pipeline.speech.transcribe as shipped

WER is over lower-cased words, punctuation removed (digits spelled out for
Russian only); deletion rate is the share of reference words missing, the
measure of lost speech. RTF excludes model loading and decoding the file.
Prints a Markdown table; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ENGINES = ("openai-whisper", "faster-whisper", "fw-batched", "callreview")
DEFAULT_SET = REPO.parent / "shared" / "realspeech"


def entries(folder: Path) -> list[dict]:
    """Manifest rows that can be scored: a language and a non-empty reference."""
    rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [r for r in rows if r.get("language") in ("ru", "en") and r.get("reference")]


def reference_text(row: dict) -> str:
    return " ".join(str(v) for v in row["reference"].values())


# --- worker: one engine, in its own process ------------------------------------


def worker(engine: str, folder: Path) -> dict:
    from pipeline.config import Settings
    from pipeline.speech.audio import decode
    from pipeline.speech.models import convert_ct2_to_openai, load_openai_checkpoint, resolve_model

    cache = Settings().model_cache
    rows = entries(folder)
    decoded = [decode(folder / r["file"]) for r in rows]
    t0 = time.perf_counter()
    if engine == "openai-whisper":
        pt = Path(cache) / "whisper-base-openai.pt"  # the same file benchmarks/transcribe_speed.py makes
        if not pt.exists():
            convert_ct2_to_openai(resolve_model("base", cache).path, pt)
        model = load_openai_checkpoint(pt, "cpu")

        def run(audio, lang):
            return " ".join(model.transcribe(ch, language=lang, fp16=False)["text"] for ch in audio.channels), None
    elif engine in ("faster-whisper", "fw-batched"):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        model = WhisperModel(str(resolve_model("base", cache).path), device="cpu", compute_type="int8")
        batched = BatchedInferencePipeline(model)

        def run(audio, lang):
            if engine == "fw-batched":
                parts = [batched.transcribe(ch, language=lang, beam_size=5, batch_size=8)[0] for ch in audio.channels]
            else:
                parts = [model.transcribe(ch, language=lang, beam_size=5)[0] for ch in audio.channels]
            return " ".join(s.text for segs in parts for s in segs), None
    else:
        from pipeline.speech.transcribe import TranscribeOptions, Transcriber

        transcribers: dict[str, Transcriber] = {}

        def run(audio, lang):
            if lang not in transcribers:
                transcribers[lang] = Transcriber(TranscribeOptions(model_cache=str(cache), language=lang))
            tr = transcribers[lang].transcribe(audio)
            # channel by channel, as the other engines give them and the references list them
            text = " ".join(u.text for u in sorted(tr.utterances, key=lambda u: (u.channel, u.start)))
            return text, tr.coverage.share if tr.coverage else None
    load_s = time.perf_counter() - t0
    out = []
    for row, audio in zip(rows, decoded):
        run(type(audio)(audio.info, [audio.channels[0][: 16000 * 3]], ["unknown"]), row["language"])  # warm-up
        t = time.perf_counter()
        text, cov = run(audio, row["language"])
        out.append({"file": row["file"], "duration": audio.duration, "seconds": time.perf_counter() - t, "text": text, "coverage": cov})
    return {"engine": engine, "load_s": load_s, "files": out, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- parent: run the workers, score, print the table -----------------------------


def norm(text: str, lang: str) -> str:
    text = text.lower().replace("ё", "е")
    if lang == "ru":
        from synthesize import number_to_words

        text = re.sub(r"(?<=\d)[ ,.](?=\d{3})", "", text)
        text = re.sub(r"\d+", lambda m: f" {number_to_words(int(m.group()))} ", text)
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


def score(result: dict, rows: dict[str, dict]) -> tuple[dict, list[dict]]:
    import jiwer

    per_file, refs, hyps = [], [], []
    for f in result["files"]:
        lang = rows[f["file"]]["language"]
        ref, hyp = norm(reference_text(rows[f["file"]]), lang), norm(f["text"], lang)
        out = jiwer.process_words(ref, hyp)
        per_file.append({"file": f["file"], "wer": out.wer, "del": out.deletions / max(1, len(ref.split())), "coverage": f["coverage"]})
        refs.append(ref)
        hyps.append(hyp)
    pooled = jiwer.process_words(refs, hyps)
    total = sum(f["duration"] for f in result["files"])
    return {
        "engine": result["engine"],
        "wer": pooled.wer,
        "del": pooled.deletions / max(1, sum(len(r.split()) for r in refs)),
        "rtf": sum(f["seconds"] for f in result["files"]) / total,
        "rss": result["peak_rss_mb"],
        "audio_s": total,
    }, per_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", type=Path, default=DEFAULT_SET, help="folder with manifest.json (default: ../shared/realspeech)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ", ".join(ENGINES))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.result.write_text(json.dumps(worker(args.worker, args.set), ensure_ascii=False), encoding="utf-8")
        return 0
    rows = {r["file"]: r for r in entries(args.set)}
    if not rows:
        print(f"no scorable files in {args.set}", file=sys.stderr)
        return 2
    totals, files = [], {}
    for engine in args.engines.split(","):
        res = Path(f"/tmp/real_speech_{engine}_{os.getpid()}.json")
        print(f"{engine}: {len(rows)} files ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, "--worker", engine, "--set", str(args.set), "--result", str(res)], check=True)
        total, per_file = score(json.loads(res.read_text(encoding="utf-8")), rows)
        res.unlink()
        totals.append(total)
        files[engine] = per_file
    print(f"\n{len(rows)} files, {totals[0]['audio_s']:.0f} s of audio; {platform.machine()}, {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| engine | WER | deletion rate | RTF | peak RSS MB |\n|---|---|---|---|---|")
    for t in totals:
        print(f"| {t['engine']} | {t['wer']:.3f} | {t['del']:.3f} | {t['rtf']:.3f} | {t['rss']:.0f} |")
    names = list(files)
    print("\n| file | " + " | ".join(f"{n} WER / del" for n in names) + " | callreview coverage |")
    print("|---|" + "---|" * (len(names) + 1))
    for k, f in enumerate(rows):
        cells = [f"{files[n][k]['wer']:.2f} / {files[n][k]['del']:.2f}" for n in names]
        cov = files.get("callreview", [{}] * len(rows))[k].get("coverage")
        print(f"| `{f}` | " + " | ".join(cells) + f" | {cov:.2f} |" if cov is not None else f"| `{f}` | " + " | ".join(cells) + " | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
