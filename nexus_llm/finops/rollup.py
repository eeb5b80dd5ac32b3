"""Checkpointed rollups beside each ledger file: the per-day statistics of everything read so
far, and where reading stopped, so the next report reads only the bytes appended since.

`x.jsonl` gets `x.jsonl.rollup.json`: {identity, offset, ledger}. The identity (device, inode
and a hash of the file's first line) tells a rotated or truncated file from the same one grown
longer; any doubt rebuilds from scratch. The JSONL stays the source of truth: delete the rollup
and the next report rebuilds it, to the same cent. Rollups are written atomically (temp file +
rename) and only where the directory is writable; otherwise the report still works, just
without the shortcut.

A first read of a large file is split at line boundaries across the machine's cores (forked
workers, each returning its small per-day statistics).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .cube import Folder, Ledger, LineChunks

ROLLUP_SUFFIX = ".rollup.json"
_FORMAT = 2
_HEAD_BYTES = 4096
_PARALLEL_MIN_BYTES = 32 << 20
_CHECKPOINT_BYTES = 4 << 20


@dataclass(slots=True)
class FileRead:
    """What reading one ledger file produced, and how."""

    path: Path
    ledger: Ledger
    bytes_read: int
    from_rollup: bool


def read_ledger_file(path: Path, *, use_rollups: bool = True) -> FileRead:
    if path.suffix == ".gz":
        return _read_gzip(path)
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        head = handle.read(_HEAD_BYTES)
        first_line = head[: head.find(b"\n") + 1]
        identity = {
            "dev": stat.st_dev,
            "ino": stat.st_ino,
            "head": hashlib.sha256(first_line).hexdigest(),
        }
        saved = _load(path) if use_rollups else None
        if saved is not None and saved[2] == identity and stat.st_size >= saved[1]:
            ledger, start, from_rollup = saved[0], saved[1], True
        else:
            ledger, start, from_rollup = Ledger(), 0, False
        ledger.partial = 0  # a partial line belongs to this read, not to the rollup
        offset, trailing = _fold_range(path, handle, ledger, start, stat.st_size)
        if trailing:
            ledger.partial += 1
    # Rewriting the rollup costs more than re-reading a little: checkpoint only when the new
    # bytes are worth it (or when there was no usable rollup at all).
    grew = offset - start
    if use_rollups and first_line and grew and (not from_rollup or grew >= _CHECKPOINT_BYTES):
        _store(path, identity, offset, ledger)
    return FileRead(path, ledger, offset - start, from_rollup)


def _fold_range(
    path: Path, handle: object, ledger: Ledger, start: int, size: int
) -> tuple[int, int]:
    """Fold bytes [start, size) into `ledger`; returns (offset after the last line, trailing)."""
    workers = os.cpu_count() or 1
    if size - start >= _PARALLEL_MIN_BYTES and workers > 1 and sys.platform == "linux":
        bounds = _split(path, start, size, workers)
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(len(bounds) - 1, mp_context=context) as pool:
            parts = list(
                pool.map(_fold_part, [str(path)] * (len(bounds) - 1), bounds[:-1], bounds[1:])
            )
        offset, trailing = start, 0
        for part, end, tail in parts:
            ledger.add(part)
            offset, trailing = end, tail
        return offset, trailing
    folder = Folder(ledger)
    chunks = LineChunks(handle, start=start)  # type: ignore[arg-type]
    offset = start
    for chunk, end in chunks:
        folder.fold(chunk)
        offset = end
    folder.finish()
    return offset, chunks.trailing


def _split(path: Path, start: int, size: int, parts: int) -> list[int]:
    """Byte offsets that cut [start, size) into `parts` ranges at line boundaries."""
    bounds = [start]
    with path.open("rb") as handle:
        for n in range(1, parts):
            handle.seek(start + (size - start) * n // parts)
            handle.readline()
            cut = handle.tell()
            if bounds[-1] < cut < size:
                bounds.append(cut)
    bounds.append(size)
    return bounds


def _fold_part(path: str, start: int, stop: int) -> tuple[Ledger, int, int]:
    # A forked worker that only folds: the fold makes no reference cycles, and the cyclic GC
    # walking each chunk's fresh tuples costs ~3% for nothing.
    gc.disable()
    try:
        with open(path, "rb") as handle:
            folder = Folder()
            chunks = LineChunks(handle, start=start, stop=stop)
            offset = start
            for chunk, end in chunks:
                folder.fold(chunk)
                offset = end
        return folder.finish(), offset, chunks.trailing
    finally:
        gc.enable()


def _rollup_path(path: Path) -> Path:
    return path.with_name(path.name + ROLLUP_SUFFIX)


def _load(path: Path) -> tuple[Ledger, int, dict[str, object]] | None:
    try:
        data = json.loads(_rollup_path(path).read_text("utf-8"))
        if data.get("format") != _FORMAT:
            return None
        return Ledger.from_json(data["ledger"]), int(data["offset"]), dict(data["identity"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError):
        return None  # no rollup, or a damaged one: rebuild


def _store(path: Path, identity: dict[str, object], offset: int, ledger: Ledger) -> None:
    target = _rollup_path(path)
    data = {"format": _FORMAT, "identity": identity, "offset": offset, "ledger": ledger.to_json()}
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    except OSError:
        return  # a read-only directory: no shortcut next time, nothing else lost
    try:
        # json.dumps, not json.dump: only the one-shot encoder is the C one (~10x faster).
        text = json.dumps(data, separators=(",", ":"))
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _read_gzip(path: Path) -> FileRead:
    # Compressed rotations are finished files: read whole, every time (they are the old part
    # of the history; a rollup per archive would save little).
    folder = Folder()
    total = 0
    try:
        with gzip.open(path, "rb") as handle:
            chunks = LineChunks(handle)
            for chunk, end in chunks:
                folder.fold(chunk)
                total = end
            if chunks.trailing:
                folder.ledger.partial += 1
    except (EOFError, OSError, zlib.error):
        folder.ledger.partial += 1  # a damaged or still-compressing archive: keep what was read
    return FileRead(path, folder.finish(), total, False)
