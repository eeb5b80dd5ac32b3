"""Checkpointed rollups beside each ledger file: the cube of everything read so far, and where
reading stopped, so the next report reads only the bytes appended since.

`x.jsonl` gets `x.jsonl.rollup.json`: {identity, offset, cube}. The identity (device, inode and
a hash of the file's first bytes) tells a rotated or truncated file from the same one grown
longer; any doubt rebuilds from scratch. The JSONL stays the source of truth: delete the
rollup and the next report rebuilds it, to the same cent. Rollups are written atomically
(temp file + rename) and only where the directory is writable; otherwise the report still
works, just without the shortcut.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .cube import Cube, LineChunks, fold_chunk

ROLLUP_SUFFIX = ".rollup.json"
_FORMAT = 1
_HEAD_BYTES = 4096


@dataclass(slots=True)
class FileRead:
    """What reading one ledger file produced, and how."""

    path: Path
    cube: Cube
    bytes_read: int
    from_rollup: bool


def read_ledger_file(path: Path, *, use_rollups: bool = True) -> FileRead:
    if path.suffix == ".gz":
        return _read_gzip(path)
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        head = handle.read(_HEAD_BYTES)
        identity = {
            "dev": stat.st_dev,
            "ino": stat.st_ino,
            "head": hashlib.sha256(head[: _head_len(head)]).hexdigest(),
        }
        saved = _load(path) if use_rollups else None
        if saved is not None and _continues(saved, identity, stat.st_size):
            cube, start, from_rollup = saved[0], saved[1], True
        else:
            cube, start, from_rollup = Cube(), 0, False
        cube.partial = 0  # partial lines are a property of this read, not of the rollup
        offset = start
        chunks = LineChunks(handle, start=start)
        for chunk, end in chunks:
            fold_chunk(cube, chunk)
            offset = end
        if chunks.trailing:
            cube.partial += 1
    if use_rollups and offset > start:
        _store(path, identity, offset, cube)
    return FileRead(path, cube, offset - start, from_rollup)


def _head_len(head: bytes) -> int:
    # Hash only whole lines of the head: the first line never changes once written.
    cut = head.find(b"\n") + 1
    return cut if cut else 0


def _continues(
    saved: tuple[Cube, int, dict[str, object]], identity: dict[str, object], size: int
) -> bool:
    _cube, offset, old = saved
    return old == identity and size >= offset


def _rollup_path(path: Path) -> Path:
    return path.with_name(path.name + ROLLUP_SUFFIX)


def _load(path: Path) -> tuple[Cube, int, dict[str, object]] | None:
    try:
        data = json.loads(_rollup_path(path).read_text("utf-8"))
        if data.get("format") != _FORMAT:
            return None
        cube = Cube.from_json(data["cube"])
        cube.corrupt = int(data.get("corrupt", 0))
        return cube, int(data["offset"]), dict(data["identity"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no rollup, or a damaged one: rebuild


def _store(path: Path, identity: dict[str, object], offset: int, cube: Cube) -> None:
    target = _rollup_path(path)
    data = {
        "format": _FORMAT,
        "identity": identity,
        "offset": offset,
        "corrupt": cube.corrupt,
        "cube": cube.to_json(),
    }
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    except OSError:
        return  # a read-only directory: no shortcut next time, nothing else lost
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"))
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _read_gzip(path: Path) -> FileRead:
    # Compressed rotations are finished files: read whole, every time (they are the old,
    # small part of the history; their rollup would save little).
    cube = Cube()
    total = 0
    try:
        with gzip.open(path, "rb") as handle:
            chunks = LineChunks(handle)  # type: ignore[arg-type]
            for chunk, end in chunks:
                fold_chunk(cube, chunk)
                total = end
            if chunks.trailing:
                cube.partial += 1
    except (EOFError, OSError):
        cube.partial += 1  # a damaged or still-compressing archive: keep what was read
    return FileRead(path, cube, total, False)
