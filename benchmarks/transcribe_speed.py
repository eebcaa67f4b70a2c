"""Transcription speed, memory and WER: callreview's pipeline against the plain ways.

Run by hand (not a test):

    .venv/bin/python benchmarks/transcribe_speed.py                 # data/demo, CPU
    .venv/bin/python benchmarks/transcribe_speed.py --device cuda   # on a GPU machine

Three engines on the same calls and the same base weights, each in its own
subprocess (so peak RSS is its own):

  openai-whisper   each channel transcribed whole, default settings, from the
                   checkpoint converted out of the bundled CTranslate2 model
  faster-whisper   each channel transcribed whole, default settings (beam 5)
  callreview       pipeline.speech.transcribe as shipped (each channel's speech
                   packed into 30 s windows, each encoded alone, decoded in one
                   beam-5 batch per core, word times by batched alignment,
                   failed windows redone; --beam/--window change it),
                   one call at a time
  callreview-batch the same, the calls in batches of 8 as `callreview
                   transcribe FILE... --out DIR` and a single `process` worker
                   run them (the windows of several calls share the decoding
                   batches)

RTF is transcription seconds per second of (stereo) call, model load and file
decoding excluded; WER is jiwer over lower-cased text without punctuation, digits
spelled out, against the reference turns. The table goes into the
"Transcription" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ENGINES = ("openai-whisper", "faster-whisper", "callreview", "callreview-batch")
AUDIO_EXT = (".wav", ".mp3", ".ogg", ".m4a", ".amr", ".flac", ".opus")


def find_calls(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXT and p.with_suffix(".json").exists())


# --- worker: one engine, in its own process ------------------------------------


def worker(engine: str, calls: list[Path], device: str, pt: Path, beam: int, window: float) -> dict:
    from pipeline.config import Settings
    from pipeline.speech.audio import decode
    from pipeline.speech.models import load_openai_checkpoint, resolve_model

    cache = Settings().model_cache
    decoded = [decode(p) for p in calls]
    warm = decoded[0].channels[0][: 16000 * 3]
    t0 = time.perf_counter()
    if engine == "openai-whisper":
        model = load_openai_checkpoint(pt, device)

        def run(audio):
            texts = []
            for ch in audio.channels:
                r = model.transcribe(ch, language="ru", fp16=device == "cuda")
                texts.append(r["text"])
            return texts
    elif engine == "faster-whisper":
        from faster_whisper import WhisperModel

        compute = "float16" if device == "cuda" else "int8"
        model = WhisperModel(str(resolve_model("base", cache).path), device=device, compute_type=compute)

        def run(audio):
            return ["".join(s.text for s in model.transcribe(ch, language="ru")[0]) for ch in audio.channels]
    else:
        from pipeline.speech.transcribe import TranscribeOptions, Transcriber

        tr = Transcriber(TranscribeOptions(model_cache=str(cache), device=device, beam_size=beam, window_s=window))

        def channel_texts(t, audio):
            return [" ".join(u.text for u in t.utterances if u.channel == i) for i in range(len(audio.channels))]

        def run(audio):
            return channel_texts(tr.transcribe(audio), audio)
    load_s = time.perf_counter() - t0
    run(type(decoded[0])(decoded[0].info, [warm], ["unknown"]))  # warm-up, not timed
    rows = []
    if engine == "callreview-batch":
        from pipeline.speech.transcribe import BATCH_CALLS

        for k in range(0, len(calls), BATCH_CALLS):
            t = time.perf_counter()
            done = tr.transcribe_many(decoded[k : k + BATCH_CALLS])
            spent = time.perf_counter() - t
            batch_s = sum(a.duration for a in decoded[k : k + BATCH_CALLS])
            for path, audio, tx in zip(calls[k:], decoded[k:], done):  # the batch's time shared by duration
                rows.append({"call": path.name, "duration": audio.duration, "seconds": spent * audio.duration / batch_s, "texts": channel_texts(tx, audio), "speakers": audio.speakers})
        return {"engine": engine, "load_s": load_s, "calls": rows, "peak_rss_mb": peak_rss_mb()}
    for path, audio in zip(calls, decoded):
        t = time.perf_counter()
        texts = run(audio)
        rows.append({"call": path.name, "duration": audio.duration, "seconds": time.perf_counter() - t, "texts": texts, "speakers": audio.speakers})
    return {"engine": engine, "load_s": load_s, "calls": rows, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over exec from the parent, so a small child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- parent: run the workers, score, write the table -----------------------------


def norm(text: str) -> str:
    from synthesize import number_to_words

    text = text.lower().replace("ё", "е")
    text = re.sub(r"(?<=\d)[ ,.](?=\d{3})", "", text)
    text = re.sub(r"\d+", lambda m: f" {number_to_words(int(m.group()))} ", text)
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text)).strip()


def score(result: dict) -> dict:
    import jiwer

    refs, hyps, op_refs, op_hyps = [], [], [], []
    for row in result["calls"]:
        ref = json.loads((CALLS_DIR / row["call"]).with_suffix(".json").read_text(encoding="utf-8"))
        for text, speaker in zip(row["texts"], row["speakers"]):
            r = norm(" ".join(t["text"] for t in ref["turns"] if t["speaker"] == speaker))
            refs.append(r)
            hyps.append(norm(text))
            if speaker == "operator":
                op_refs.append(r)
                op_hyps.append(norm(text))
    total = sum(r["duration"] for r in result["calls"])
    spent = sum(r["seconds"] for r in result["calls"])
    return {
        "engine": result["engine"],
        "rtf": spent / total,
        "seconds": spent,
        "audio_s": total,
        "rss": result["peak_rss_mb"],
        "wer": jiwer.wer(refs, hyps),
        "wer_op": jiwer.wer(op_refs, op_hyps),
        "load_s": result["load_s"],
    }


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), platform.processor())
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}; load average at the start {load[0]:.2f}"


SETTINGS = {
    "openai-whisper": "each channel whole; openai-whisper defaults (greedy + temperature fallback, float32)",
    "faster-whisper": "each channel whole; faster-whisper defaults (beam 5, no VAD)",
    "callreview": "pipeline, one call at a time (`Transcriber.transcribe`; each of several `process` workers): each channel's speech packed into {window:g} s windows, encoded one by one, decoded in one batch per core (beam {beam}), word timestamps",
    "callreview-batch": "the same, 8 calls per batch (`transcribe FILE...`, and `process` in one worker process, its default on 2 cores)",
}


def write_section(md: Path, scores: list[dict], args, header: str, device: str) -> str:
    base = next((s for s in scores if s["engine"] == "openai-whisper"), None)
    lines = [
        "## Transcription",
        "",
        f"`benchmarks/transcribe_speed.py` on {len(find_calls(CALLS_DIR))} synthetic demo calls "
        f"({scores[0]['audio_s']:.0f} s of stereo 8 kHz audio, festival voice over a telephone line), "
        f"base model, device {device}, {dt.date.today().isoformat()}.",
        f"Machine: {header}.",
        "",
        "| engine | how | RTF (s per s of call) | speed-up vs openai-whisper | peak RSS | WER both channels | WER operator |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        speed = f"{base['rtf'] / s['rtf']:.1f}x" if base else "-"
        how = SETTINGS[s["engine"]].format(beam=args.beam, window=args.window)
        lines.append(f"| {s['engine']} | {how} | {s['rtf']:.3f} | {speed} | {s['rss']:.0f} MB | {s['wer']:.3f} | {s['wer_op']:.3f} |")
    lines += [
        "",
        "RTF excludes model loading and file decoding. WER: jiwer on lower-cased words, punctuation removed, "
        "digits spelled out, against the reference turn texts (the formant voice keeps WER high; human speech does better). "
        "Each engine ran in its own process, one after another; other work on the machine inflates wall time.",
        "",
    ]
    section = "\n".join(lines) + "\n"
    text = md.read_text(encoding="utf-8") if md.exists() else "# Benchmarks\n\n"
    if "## Transcription" in text:
        start = text.index("## Transcription")
        nxt = text.find("\n## ", start + 5)
        text = text[:start] + section + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text, encoding="utf-8")
    return section


CALLS_DIR = REPO / "data" / "demo"


def main() -> int:
    global CALLS_DIR
    from pipeline.speech.transcribe import TranscribeOptions

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=Path, default=CALLS_DIR, help="folder with call audio and <id>.json references")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ", ".join(ENGINES))
    defaults = TranscribeOptions()
    ap.add_argument("--beam", type=int, default=defaults.beam_size, help=f"beam size for callreview's pipeline (its default: {defaults.beam_size})")
    ap.add_argument("--window", type=float, default=defaults.window_s, help=f"window length for callreview's pipeline (its default: {defaults.window_s:g} s)")
    ap.add_argument("--pt", type=Path, default=None, help="openai-whisper checkpoint (made from the bundled model if absent)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    CALLS_DIR = args.calls
    calls = find_calls(args.calls)
    if not calls:
        print(f"no calls with references in {args.calls}", file=sys.stderr)
        return 1
    from pipeline.config import Settings

    pt = args.pt or Settings().model_cache / "whisper-base-openai.pt"
    if args.worker:
        args.result.write_text(json.dumps(worker(args.worker, calls, args.device, pt, args.beam, args.window), ensure_ascii=False))
        return 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "openai-whisper" in engines and not pt.exists():
        from pipeline.speech.models import convert_ct2_to_openai, resolve_model

        print(f"converting the bundled model for openai-whisper -> {pt}", flush=True)
        convert_ct2_to_openai(resolve_model("base", Settings().model_cache).path, pt)
    header = machine()
    scores = []
    for engine in engines:
        out = Path(f"/tmp/callreview-bench-{os.getpid()}-{engine}.json")
        cmd = [sys.executable, __file__, "--worker", engine, "--result", str(out), "--calls", str(args.calls), "--device", args.device, "--beam", str(args.beam), "--window", str(args.window), "--pt", str(pt)]
        print(f"{engine}: running on {len(calls)} calls ...", flush=True)
        subprocess.run(cmd, check=True)
        s = score(json.loads(out.read_text()))
        out.unlink()
        scores.append(s)
        print(f"  RTF {s['rtf']:.3f}  peak RSS {s['rss']:.0f} MB  WER {s['wer']:.3f} (operator {s['wer_op']:.3f})  load {s['load_s']:.1f} s", flush=True)
    header += f"; at the end {os.getloadavg()[0]:.2f}"
    if args.no_write:
        print(header)
        for s in scores:
            print(s)
    else:
        print(write_section(args.out, scores, args, header, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
