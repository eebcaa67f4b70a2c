"""SHA-256 of files read in blocks: recordings are deduplicated by content and
the bundled model is checked by it, without reading a whole file into memory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 1 << 20


def blocks(f: BinaryIO) -> Iterator[bytes]:
    """The file's content in 1 MiB blocks."""
    return iter(lambda: f.read(BLOCK), b"")


def stream_sha256(f: BinaryIO) -> str:
    """Hex sha256 of an open binary file (local or fsspec)."""
    h = hashlib.sha256()
    for block in blocks(f):
        h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return stream_sha256(f)
