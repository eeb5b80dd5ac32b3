"""JSON Lines on disk: one atomic append per line, and a reader that survives damage.

Writers are many processes at once (app workers, xdist workers). Each line goes out as a single
`write()` on a descriptor opened with `O_APPEND`, so the kernel places it at the end of the file
in one piece: lines never interleave and none is lost. The file is opened per append rather than
kept open, so a rotation (rename + new file) is picked up by the very next line.

Readers tolerate what a crash or a bad editor leaves behind: a last line without its newline
(a write cut short) and lines that do not parse are skipped and counted, never fatal.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_FILE_MODE = 0o640
_ROTATION_SUFFIX = re.compile(r"[0-9][0-9_:T-]*")


# One encoder each, built once: `json.dumps` with options builds a new encoder on every call,
# and every LLM call encodes a request body and two log lines.
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_BODY_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_line(record: Mapping[str, object]) -> bytes:
    """One record as a JSON line (compact, UTF-8, newline-terminated, no NaN)."""
    return _LINE_ENCODER.encode(record).encode("utf-8") + b"\n"


def compact_json(value: object) -> bytes:
    """A request body: compact JSON, UTF-8 (what `json.dumps(…, separators=(",", ":"),
    ensure_ascii=False)` gives, without building an encoder per call)."""
    return _BODY_ENCODER.encode(value).encode("utf-8")


class JsonlAppender:
    """Appends records to one JSONL file, creating its directory on first use."""

    __slots__ = ("_dir_ready", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._dir_ready = False

    def append(self, record: Mapping[str, object]) -> None:
        self.append_bytes(encode_line(record))

    def append_bytes(self, line: bytes) -> None:
        if not self._dir_ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._dir_ready = True
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        try:
            written = os.write(fd, line)
            # A regular file takes the whole buffer in one call unless the disk is full. After a
            # short write, end the torn line so the next append (from any process) starts clean:
            # the damage stays one corrupt line, which readers skip and count.
            if written != len(line):
                with contextlib.suppress(OSError):
                    os.write(fd, b"\n")
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
        finally:
            os.close(fd)


@dataclass(slots=True)
class ReadStats:
    """What a read found besides good records."""

    files: list[Path] = field(default_factory=list)
    damaged_files: list[Path] = field(default_factory=list)
    lines: int = 0
    skipped_corrupt: int = 0
    skipped_partial: int = 0

    @property
    def skipped(self) -> int:
        return self.skipped_corrupt + self.skipped_partial

    def describe(self) -> str:
        if not self.skipped:
            return f"{self.lines} lines read from {len(self.files)} file(s), none skipped"
        damaged = f", {len(self.damaged_files)} damaged file(s)" if self.damaged_files else ""
        return (
            f"{self.lines} lines read from {len(self.files)} file(s); skipped "
            f"{self.skipped_corrupt} corrupt and {self.skipped_partial} partial line(s){damaged}"
        )


def expand_sources(
    sources: Iterable[str | os.PathLike[str]], *, rotated: bool = True
) -> list[Path]:
    """Paths and globs to existing files, oldest rotation first, each file once.

    With `rotated`, a plain path also brings its rotated siblings (`x.jsonl.1`, `x.jsonl.2.gz`,
    `x.jsonl-20260101`) so a report over a date range sees lines that logrotate moved away.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for source in sources:
        text = os.fspath(source)
        if glob.has_magic(text):
            matches = [Path(p) for p in sorted(glob.glob(text))]
        else:
            matches = rotations(Path(text)) if rotated else []
            if Path(text).exists():
                matches.append(Path(text))
        for path in matches:
            resolved = path.resolve()
            if resolved not in seen and path.is_file():
                seen.add(resolved)
                found.append(path)
    return found


def rotations(path: Path) -> list[Path]:
    def suffix(p: Path) -> str:
        return p.name[len(path.name) + 1 :].removesuffix(".gz")

    # Only logrotate's shapes (numbers, dates) count: state files beside the log never do.
    siblings = [
        p
        for p in map(Path, glob.glob(glob.escape(str(path)) + "[.-]*"))
        if _ROTATION_SUFFIX.fullmatch(suffix(p))
    ]

    def age_key(p: Path) -> tuple[int, str]:
        # Numbered rotations: a higher number is older. Dated ones sort by their date.
        # Numbered rotations (logrotate's .1, .2 …) count up with age; anything longer is a date.
        s = suffix(p)
        return (-int(s), "") if s.isdigit() and len(s) <= 4 else (0, s)

    return sorted(siblings, key=age_key)


def iter_records(
    sources: Iterable[str | os.PathLike[str]],
    stats: ReadStats | None = None,
    *,
    rotated: bool = True,
) -> Iterator[dict[str, object]]:
    """Yield every JSON object in the sources, skipping (and counting) damaged lines."""
    stats = stats if stats is not None else ReadStats()
    for path in expand_sources(sources, rotated=rotated):
        stats.files.append(path)
        try:
            yield from _records_of(path, stats)
        except (EOFError, OSError, zlib.error):
            # A rotation still being compressed, or a damaged archive: keep what was read,
            # count the damage, and go on with the other files.
            stats.damaged_files.append(path)
            stats.skipped_partial += 1


def _records_of(path: Path, stats: ReadStats) -> Iterator[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for raw in handle:
            stats.lines += 1
            if not raw.endswith(b"\n"):
                stats.skipped_partial += 1
                continue
            record = parse_line(raw) if raw.endswith(b"\n") else None
            if record is None:
                if raw.strip():
                    stats.skipped_corrupt += 1
                else:
                    stats.lines -= 1
                continue
            yield record


def read_records(
    sources: Iterable[str | os.PathLike[str]], *, rotated: bool = True
) -> tuple[list[dict[str, object]], ReadStats]:
    stats = ReadStats()
    records = list(iter_records(sources, stats, rotated=rotated))
    return records, stats


def parse_line(raw: bytes) -> dict[str, object] | None:
    """One complete JSONL line as a dict; None for a partial, corrupt or non-object line."""
    if not raw.endswith(b"\n"):
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
