"""Transcription of real human speech nobody on the team made, and of our own
synthetic calls: callreview against the engines a user would pick instead, side
by side in one run, same base weights.

    .venv/bin/python benchmarks/real_speech.py                      # all sets, both splits
    .venv/bin/python benchmarks/real_speech.py --sets realspeech --split dev
    .venv/bin/python benchmarks/real_speech.py --engines fw-batched,callreview

Six sets, each cut into a ``dev`` split (tune on it) and a ``test`` split
(report on it, never tune on it):

  realspeech  ../shared/realspeech (``manifest.json``: each file's language and
              reference; its README says how far each can be trusted: several
              are vendor ASR output or a pinned Whisper-tiny string, not human
              transcripts). A file without a transcript is still run (speed,
              coverage, that nothing breaks) and listed apart. The split
              is fixed in ``REALSPEECH_SPLIT``, one two-speaker mono call in dev.
  demo        data/demo: six stereo 8 kHz calls in a festival voice, the turn
              texts as reference; calls 1-3 dev, 4-6 test.
  dialogues   the 19 labelled dialogues of tests/data/align, spoken by festival
              over a simulated phone line (cached under $CALLREVIEW_SYNTH_CACHE;
              the first run synthesizes them, minutes); their own split.
  voip        the same dialogues as a VoIP recorder with silence suppression
              writes them: one mono mix, turns 0.15-0.6 s apart, exact zeros
              between them (the speech itself over the phone line); the
              reference in time order; the dialogues' split.
  aligneval   the calls of ../shared/aligneval (four kinds of shop, dialogues
  aligneval-voip  written by people who never saw our code), spoken as
              ``dialogues`` and as ``voip``; its split by kind: furniture and
              food delivery dev, internet provider and cosmetics test. No
              transcription setting was ever tuned on them.

Every engine gets the same decoded 16 kHz channels (``audio.decode``: a mono mix
saved as two identical channels is one channel) and runs in its own subprocess,
so peak RSS is its own:

  openai-whisper    each channel whole, default settings (checkpoint converted
                    from the bundled CTranslate2 weights)
  faster-whisper    each channel whole, beam 5
  fw-batched        faster-whisper's BatchedInferencePipeline: beam 5, its
                    default Silero VAD, batch 8 (the peer a user would pick)
  callreview        pipeline.speech.transcribe as shipped
  callreview-batch  the same, as ``process`` runs a folder: a set's calls in
                    batches of 8 through ``transcribe_many``; a batch's time is
                    shared out between its files by duration (the others have
                    no API for several files at once)

WER is over lower-cased words, punctuation removed (digits spelled out for
Russian only), pooled over a set's files; deletion rate is the share of
reference words missing, the measure of lost speech. RTF excludes model loading,
decoding the file and an untimed warm-up on its first 10 s (every engine the
same; one-time costs such as the first k-means or torch call are not a
per-call cost). Prints Markdown tables; not a test.
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

ENGINES = ("openai-whisper", "faster-whisper", "fw-batched", "callreview", "callreview-batch")
SETS = ("realspeech", "demo", "dialogues", "voip", "aligneval", "aligneval-voip")
REALSPEECH = REPO.parent / "shared" / "realspeech"
WARM_UP_S = 10  # seconds of each file every engine transcribes, untimed, before the timed run
# Fixed before tuning; a file added to the set later is held out.
REALSPEECH_SPLIT = {
    "faster-whisper/stereo_diarization.wav": "dev",
    "faster-whisper/jfk.flac": "dev",
    "vosk-server/test.wav": "dev",
    "googleapis-python-speech/commercial_mono.wav": "dev",
    "pyannote-audio/sample.wav": "test",
    "azure-speech-sdk/katiesteve.wav": "test",
    "joinly/OSR_us_000_0034_8k.wav": "test",
}


# --- the sets: rows of {set, id, path, language, split, reference} ---------------


def realspeech_rows(folder: Path) -> list[dict]:
    """Every file of the manifest. One without a transcript (``reference`` None)
    is still transcribed, for speed, coverage and that nothing breaks; its
    language, if not Russian or English, is left to Whisper to detect."""
    rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [
        {"set": "realspeech", "id": r["file"], "path": str(folder / r["file"]),
         "language": r["language"] if r.get("language") in ("ru", "en") else None, "split": REALSPEECH_SPLIT.get(r["file"], "test"),
         "reference": " ".join(str(v) for v in r["reference"].values()) if r.get("reference") and r.get("language") in ("ru", "en") else None}
        for r in rows
    ]


def by_channel(turns: list[dict]) -> str:
    """Reference text channel by channel (operator, the left channel, first), as the engines give it."""
    return " ".join(t["text"] for who in ("operator", "client") for t in turns if t["speaker"] == who)


def demo_rows() -> list[dict]:
    out = []
    for meta in sorted((REPO / "data" / "demo").glob("call_*.json")):
        call = json.loads(meta.read_text(encoding="utf-8"))
        number = int(meta.stem.split("_")[1])
        out.append({"set": "demo", "id": meta.stem, "path": str(meta.parent / call["file"]), "language": "ru",
                    "split": "dev" if number <= 3 else "test", "reference": by_channel(call["turns"])})
    return out


def _calls(source: str, seed: int, **draw):
    """The labelled dialogues of ``source`` (own: tests/data/align; aligneval:
    ../shared/aligneval, written by people who never saw our code) that are
    calls, each with its turns and as ``build_call`` speaks it (stereo, with
    the reference times; ``seed`` draws other pauses). A text festival cannot
    speak leaves its call out (why, on stderr); the other calls go on."""
    from align_eval import load_dialogues
    from synthesize import SynthesisError, build_call

    for d in load_dialogues(sets=(source,)):
        if d.channel == "call":
            turns = [{"speaker": u.speaker, "text": u.text, "step": None} for u in d.transcript.utterances]
            try:
                stereo, ref = build_call(turns, seed=sum(map(ord, d.id)) + 1000 * seed, **draw)
            except SynthesisError as exc:
                print(f"{d.id}: cannot be spoken, left out ({exc})", file=sys.stderr, flush=True)
                continue
            yield d, turns, stereo, ref


def _spoken(wav: Path, audio) -> Path:
    """``wav``, written from ``audio`` unless cached."""
    from synthesize import write_call

    if not wav.exists():
        print(f"writing {wav.name} ({wav.parent.name}) ...", file=sys.stderr, flush=True)
        wav.parent.mkdir(parents=True, exist_ok=True)
        write_call(wav, audio)
    return wav


def _timed(ref: list[dict]) -> dict:
    """Each reference turn's speaker and time, and its text (benchmarks/lost_turns.py)."""
    return {"turns": [(r["speaker"], r["start"], r["end"]) for r in ref], "texts": [r["text"] for r in ref]}


def dialogue_rows(source: str = "own", seed: int = 0) -> list[dict]:
    """The labelled dialogues spoken by festival, as benchmarks/align_eval.py
    --make-asr makes them; another ``seed`` draws other pauses, overlaps and
    line noise (benchmarks/lost_turns.py)."""
    from synthesize import _cache_dir

    name = "dialogue-calls" if source == "own" else f"{source}-calls"
    folder = _cache_dir() / (name if seed == 0 else f"{name}-{seed}")
    return [{"set": "dialogues" if source == "own" else source, "id": d.id, "path": str(_spoken(folder / f"{d.id}.wav", stereo)), "language": "ru",
             "split": d.split, "reference": by_channel(turns), **_timed(ref)} for d, turns, stereo, ref in _calls(source, seed)]


def voip_rows(seed: int = 0, source: str = "own") -> list[dict]:
    """The dialogues in one mono channel with digital silence between close
    turns: every pause is equally quiet, the case where windows were cut at
    each turn (docs/benchmarks.md, "Windows as full as the pauses allow").
    Another ``seed`` draws other pauses: more calls from the same dialogues
    (benchmarks/lost_turns.py)."""
    import numpy as np
    from synthesize import CALL_SR, _cache_dir

    name = "voip-calls" if source == "own" else f"{source}-voip-calls"
    folder = _cache_dir() / (name if seed == 0 else f"{name}-{seed}")
    out = []
    for d, _, stereo, ref in _calls(source, seed, gap=(0.15, 0.6), overlap_prob=0.0):
        mixed, line = stereo.sum(axis=0), np.zeros(stereo.shape[1], dtype=np.float32)
        for r in ref:  # silence suppression: the line's noise only while someone speaks
            a, b = int(r["start"] * CALL_SR), int(r["end"] * CALL_SR)
            line[a:b] = mixed[a:b]
        out.append({"set": "voip" if source == "own" else f"{source}-voip", "id": f"voip-{d.id}", "path": str(_spoken(folder / f"{d.id}.wav", line)),
                    "language": "ru", "split": d.split, "reference": " ".join(r["text"] for r in sorted(ref, key=lambda r: r["start"])), **_timed(ref)})
    return out


def collect(sets: list[str], split: str, realspeech: Path) -> list[dict]:
    makers = {"realspeech": lambda: realspeech_rows(realspeech), "demo": demo_rows, "dialogues": dialogue_rows, "voip": voip_rows,
              "aligneval": lambda: dialogue_rows("aligneval"), "aligneval-voip": lambda: voip_rows(source="aligneval")}
    return [r for s in sets for r in makers[s]() if split in ("all", r["split"])]


# --- worker: one engine, in its own process ------------------------------------


def worker(engine: str, rows: list[dict], options: dict) -> dict:
    from pipeline.config import Settings
    from pipeline.speech.audio import decode
    from pipeline.speech.models import convert_ct2_to_openai, load_openai_checkpoint, resolve_model

    cache = Settings().model_cache
    decoded = [decode(r["path"]) for r in rows]
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
                transcribers[lang] = Transcriber(TranscribeOptions(model_cache=str(cache), language=lang, **options))
            return scored_text(transcribers[lang].transcribe(audio))
    load_s = time.perf_counter() - t0
    if engine == "callreview-batch":
        return {"engine": engine, "load_s": load_s, "files": batched_run(rows, decoded, options, str(cache)), "peak_rss_mb": peak_rss_mb()}
    out = []
    for row, audio in zip(rows, decoded):
        # warm-up, on a clip long enough to run every stage (callreview's voice split needs 6 windows of speech)
        run(type(audio)(audio.info, [audio.channels[0][: 16000 * WARM_UP_S]], ["unknown"]), row["language"])
        t = time.perf_counter()
        text, cov = run(audio, row["language"])
        out.append({"id": row["id"], "duration": audio.duration, "seconds": time.perf_counter() - t, "text": text, "coverage": cov})
    return {"engine": engine, "load_s": load_s, "files": out, "peak_rss_mb": peak_rss_mb()}


def batched_run(rows: list[dict], decoded: list, options: dict, cache: str) -> list[dict]:
    """callreview as ``process`` runs a folder: each set's files of one language
    in batches of ``BATCH_CALLS`` calls through ``transcribe_many``. A batch's
    time is shared out between its files by duration."""
    from pipeline.speech.transcribe import BATCH_CALLS, TranscribeOptions, Transcriber

    out = {}
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r["set"], r["language"]), []).append(i)
    transcribers: dict[str, Transcriber] = {}  # one model per language, as in the file-by-file run
    for (_, lang), idx in groups.items():
        if lang not in transcribers:
            transcribers[lang] = Transcriber(TranscribeOptions(model_cache=cache, language=lang, **options))
        tr = transcribers[lang]
        first = decoded[idx[0]]
        tr.transcribe(type(first)(first.info, [first.channels[0][: 16000 * WARM_UP_S]], ["unknown"]))  # warm-up, untimed
        for k in range(0, len(idx), BATCH_CALLS):
            chunk = idx[k : k + BATCH_CALLS]
            t = time.perf_counter()
            got = tr.transcribe_many([decoded[i] for i in chunk])
            seconds = time.perf_counter() - t
            total = sum(decoded[i].duration for i in chunk)
            for i, transcript in zip(chunk, got):
                text, cov = scored_text(transcript)
                out[i] = {"id": rows[i]["id"], "duration": decoded[i].duration, "seconds": seconds * decoded[i].duration / total, "text": text,
                          "coverage": cov}
    return [out[i] for i in range(len(rows))]


def scored_text(transcript) -> tuple[str, float | None]:
    """A callreview transcript's text as it is scored, channel by channel (as
    the other engines give them and the references list them; joined in time
    order, a two-line call scored a false WER of 0.45), and its coverage."""
    text = " ".join(u.text for u in sorted(transcript.utterances, key=lambda u: (u.channel, u.start)))
    return text, transcript.coverage.share if transcript.coverage else None


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- parent: run the workers, score, print the tables ----------------------------


def norm(text: str, lang: str) -> str:
    text = text.lower().replace("ё", "е")
    if lang == "ru":
        from synthesize import number_to_words

        text = re.sub(r"(?<=\d)[ ,.](?=\d{3})", "", text)
        def spelled(digits: str) -> str:  # a phone number joined into one is too long to say as a number: digit by digit
            return number_to_words(int(digits)) if len(digits) <= 9 else " ".join(number_to_words(int(d)) for d in digits)

        text = re.sub(r"\d+", lambda m: f" {spelled(m.group())} ", text)
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


def score(files: list[dict], rows: dict[str, dict]) -> tuple[dict, list[dict]]:
    """Pooled WER, deletion rate and RTF over ``files``, and each file's own."""
    import jiwer

    per_file, refs, hyps = [], [], []
    for f in files:
        lang = rows[f["id"]]["language"]
        ref, hyp = norm(rows[f["id"]]["reference"], lang), norm(f["text"], lang)
        out = jiwer.process_words(ref, hyp)
        per_file.append({"id": f["id"], "wer": out.wer, "del": out.deletions / max(1, len(ref.split())), "coverage": f["coverage"]})
        refs.append(ref)
        hyps.append(hyp)
    pooled = jiwer.process_words(refs, hyps)
    total = sum(f["duration"] for f in files)
    return {
        "wer": pooled.wer,
        "del": pooled.deletions / max(1, sum(len(r.split()) for r in refs)),
        "rtf": sum(f["seconds"] for f in files) / total,
        "audio_s": total,
        "n": len(files),
    }, per_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated subset of " + ", ".join(SETS))
    ap.add_argument("--split", default="all", choices=["dev", "test", "all"], help="tune on dev, report on test")
    ap.add_argument("--realspeech", type=Path, default=REALSPEECH, help="folder with manifest.json (default: ../shared/realspeech)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ", ".join(ENGINES))
    ap.add_argument("--options", default="{}", help='callreview\'s TranscribeOptions as JSON, e.g. \'{"beam_size": 5}\' (tuning, on dev)')
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        rows = json.loads(args.rows.read_text(encoding="utf-8"))
        args.result.write_text(json.dumps(worker(args.worker, rows, json.loads(args.options)), ensure_ascii=False), encoding="utf-8")
        return 0
    unknown = set(args.sets.split(",")) - set(SETS) or set(args.engines.split(",")) - set(ENGINES)
    if unknown:
        print(f"unknown set or engine: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    rows = {r["id"]: r for r in collect(args.sets.split(","), args.split, args.realspeech)}
    if not rows:
        print("no scorable files", file=sys.stderr)
        return 2
    row_file = Path(f"/tmp/real_speech_rows_{os.getpid()}.json")
    row_file.write_text(json.dumps(list(rows.values()), ensure_ascii=False), encoding="utf-8")
    results = {}
    for engine in args.engines.split(","):
        res = Path(f"/tmp/real_speech_{engine}_{os.getpid()}.json")
        print(f"{engine}: {len(rows)} files ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--worker", engine, "--rows", str(row_file), "--result", str(res), "--options", args.options]
        subprocess.run(cmd, check=True)
        results[engine] = json.loads(res.read_text(encoding="utf-8"))
        res.unlink()
    row_file.unlink()
    print(f"\ncallreview options: {args.options}" if args.options != "{}" else "")
    print(f"{len(rows)} files, {sum(f['duration'] for f in results[engine]['files']):.0f} s of audio; split {args.split}; "
          f"{platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}\n")
    print("| set | split | files | audio s | engine | WER | deletion rate | RTF | peak RSS MB (whole run) |\n|---|---|---|---|---|---|---|---|---|")
    per_file: dict[str, dict] = {}
    for name in dict.fromkeys(r["set"] for r in rows.values()):
        for split in ("dev", "test"):
            for engine, result in results.items():
                files = [f for f in result["files"] if rows[f["id"]]["set"] == name and rows[f["id"]]["split"] == split and rows[f["id"]]["reference"]]
                if not files:
                    continue
                t, scored = score(files, rows)
                per_file.update({(engine, f["id"]): f for f in scored})
                print(f"| {name} | {split} | {t['n']} | {t['audio_s']:.0f} | {engine} | {t['wer']:.3f} | {t['del']:.3f} | {t['rtf']:.3f} | "
                      f"{result['peak_rss_mb']:.0f} |")
    print("\n| file | split | " + " | ".join(f"{n} WER / del" for n in results) + " | callreview coverage |")
    print("|---|---|" + "---|" * (len(results) + 1))
    for key, row in rows.items():
        if row["reference"] is not None:
            cells = [f"{per_file[(n, key)]['wer']:.2f} / {per_file[(n, key)]['del']:.2f}" for n in results]
            cov = per_file.get(("callreview", key), {}).get("coverage")
            print(f"| `{key}` | {row['split']} | " + " | ".join(cells) + (f" | {cov:.2f} |" if cov is not None else " | - |"))
    unscored = [key for key, row in rows.items() if row["reference"] is None]
    if unscored:
        print("\nWithout a transcript to score against (speed, and callreview's coverage):\n")
        print("| file | audio s | " + " | ".join(f"{n} RTF" for n in results) + " | callreview coverage |")
        print("|---|---|" + "---|" * (len(results) + 1))
        for key in unscored:
            got = {n: next(f for f in r["files"] if f["id"] == key) for n, r in results.items()}
            cov = got["callreview"]["coverage"] if "callreview" in got else None
            print(f"| `{key}` | {next(iter(got.values()))['duration']:.0f} | " + " | ".join(f"{g['seconds'] / g['duration']:.3f}" for g in got.values())
                  + (f" | {cov:.2f} |" if cov is not None else " | - |"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
