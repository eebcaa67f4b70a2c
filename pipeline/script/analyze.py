"""Stateless analysis: any input (recording, transcript JSON, chat log) ->
transcript -> alignment -> the analyze JSON. No database involved.

The CLI command ``callreview analyze`` is a thin wrapper over ``analyze_files``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from pipeline.errors import CallreviewError, InputError
from pipeline.script.align import align_many, alignment_record
from pipeline.script.checklist import Checklist
from pipeline.script.result import AlignmentRecord
from pipeline.speech.chat import is_chat_json, load_chat, parse_chat
from pipeline.speech.transcript import Transcript

log = logging.getLogger(__name__)

CHAT_SUFFIXES = {".csv", ".tsv"}
JSON_SUFFIXES = {".json"}


def load_transcript_json(path: Path, data: Any) -> Transcript:
    """A transcript in the ``callreview transcribe`` output shape."""
    try:
        return Transcript.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{path}: not a transcript JSON (needs 'utterances' with speaker, start, end, text): {exc!r}"
        ) from None


def is_text_input(path: str | Path) -> bool:
    """A chat log or transcript JSON by its name, not audio: stored as a chat, never decoded."""
    return Path(str(path)).suffix.lower() in CHAT_SUFFIXES | JSON_SUFFIXES


def load_input(path: str | Path, settings=None, operator: str | None = None) -> tuple[str, Transcript]:
    """Read one input as a transcript; returns its kind (audio, transcript, chat) too.

    ``operator`` names the operator's author in a chat log (see ``pipeline.speech.chat``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in CHAT_SUFFIXES:
        return "chat", load_chat(path, operator=operator)
    if suffix in JSON_SUFFIXES:
        try:
            text = path.read_text(encoding="utf-8-sig")
            data = json.loads(text)
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if is_chat_json(data):
            return "chat", parse_chat(text, path, operator=operator)
        return "transcript", load_transcript_json(path, data)
    return "audio", _transcribe(path, settings)


def _transcribe(path: Path, settings) -> Transcript:
    from pipeline.config import get_settings
    from pipeline.speech.audio import decode
    from pipeline.speech.transcribe import TranscribeOptions, get_transcriber

    settings = settings or get_settings()
    options = TranscribeOptions.from_settings(settings)
    decoded = decode(path, settings.operator_channel, settings.max_duration_s, options.layout)
    return get_transcriber(options).transcribe(decoded)


@dataclass
class AnalyzeResult:
    path: Path
    output: Path | None
    error: str | None = None
    result: AlignmentRecord | None = None


def output_name(path: Path, taken: set[str]) -> str:
    """``call.wav`` -> ``call.json``; a second ``call.*`` gets ``call.wav.json``."""
    name = f"{path.stem}.json"
    if name in taken:
        name = f"{path.name}.json"
    n = 2
    while name in taken:
        name = f"{path.stem}-{n}.json"
        n += 1
    taken.add(name)
    return name


def analyze_files(
    paths: Sequence[str | Path],
    checklist: Checklist,
    out_dir: str | Path,
    settings=None,
    operator: str | None = None,
) -> Iterator[AnalyzeResult]:
    """Analyze each input and write ``<out_dir>/<name>.json``; a bad input is
    reported (``error``) and the others go on."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded: list[tuple[Path, Transcript]] = []
    for p in map(Path, paths):
        try:
            _, transcript = load_input(p, settings, operator)
        except CallreviewError as exc:
            log.error("%s", exc)
            yield AnalyzeResult(p, None, str(exc))
            continue
        loaded.append((p, transcript))
    if not loaded:
        return
    taken: set[str] = set()
    alignments = align_many([t for _, t in loaded], checklist)
    for (p, transcript), alignment in zip(loaded, alignments):
        result = alignment_record(p.name, transcript, checklist, alignment)
        dest = out_dir / output_name(p, taken)
        tmp = dest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(dest)
        yield AnalyzeResult(p, dest, None, result)
