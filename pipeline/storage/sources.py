"""Where recordings come from: local files and folders, or fsspec URLs
(``s3://bucket/calls/``), listed in a stable order and copied locally only
while they are decoded."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from pipeline.errors import AudioError
from pipeline.hashing import file_sha256, stream_sha256

AUDIO_EXTENSIONS = {".wav", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".mp4", ".aac", ".amr", ".flac", ".wma", ".webm"}
Source = Path | str  # a local path, or an fsspec URL kept as a string


def is_url(source: Source) -> bool:
    """True for fsspec URLs (``s3://...``, ``file://...``), not for local paths."""
    return isinstance(source, str) and "://" in source


def source_name(source: Source) -> str:
    """The file name of a path or URL (what messages and the database show)."""
    return PurePosixPath(source.split("://", 1)[1]).name if is_url(source) else Path(source).name


def expand_paths(paths: Iterable[str | Path]) -> list[Source]:
    """Files as given, and audio files found under given folders, in a stable order.

    URLs stay strings; a URL that names a folder (``s3://bucket/calls/``) is
    listed through fsspec."""
    found: list[Source] = []
    for raw in paths:
        if is_url(raw):
            found.extend(_expand_url(str(raw)))
            continue
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            found.append(path)
    return found


def _expand_url(url: str) -> list[str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.isdir(root):
        return [url]
    files = sorted(p for p in fs.find(root) if PurePosixPath(p).suffix.lower() in AUDIO_EXTENSIONS)
    return [fs.unstrip_protocol(p) for p in files]


@contextlib.contextmanager
def local_copy(source: str) -> Iterator[Path]:
    """A local file for ``source``: the path itself, or a URL copied into a
    temp folder under its own name (error messages then name the real file)."""
    if not is_url(source):
        yield Path(source)
        return
    import fsspec

    tmp = Path(tempfile.mkdtemp(prefix="callreview-stage-"))
    try:
        dest = tmp / source_name(source)
        try:
            with fsspec.open(source, "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (OSError, ValueError) as exc:
            raise AudioError(f"{source_name(source)}: cannot be read from {source} ({exc})") from exc
        yield dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def content_sha256(source: Source) -> str:
    """The sha256 recordings are deduplicated by, read through fsspec for a URL."""
    if not is_url(source):
        return file_sha256(source)
    import fsspec

    with fsspec.open(source, "rb") as f:
        return stream_sha256(f)
