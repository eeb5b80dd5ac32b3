"""Simple read-side queries over the audit log and the ledger, for checks and fixtures."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from .audit import iso_ts
from .jsonl import ReadStats, parse_line, read_records


class JsonlView:
    """A fresh read of a JSONL file (and its rotations) each time a query runs.

    Reading on every query keeps the view honest: it shows what another process wrote a moment
    ago. `last_stats` tells how many lines the last read skipped as corrupt or partial.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.last_stats = ReadStats()

    def records(self) -> list[dict[str, object]]:
        records, self.last_stats = read_records([self.path])
        return records

    def recent(self, max_bytes: int = 4 << 20) -> list[dict[str, object]]:
        """Records in the last `max_bytes` of the current file only: enough to find what this
        process just wrote, without reading a million-line ledger and its rotations."""
        records: list[dict[str, object]] = []
        self.last_stats = ReadStats(files=[self.path])
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(size - max_bytes, 0))
                if size > max_bytes:
                    handle.readline()  # the first line is probably cut: start at the next one
                tail = handle.read()
        except FileNotFoundError:
            return records
        for raw in tail.splitlines(keepends=True):
            self.last_stats.lines += 1
            record = parse_line(raw)
            if record is not None:
                records.append(record)
            elif not raw.endswith(b"\n"):
                self.last_stats.skipped_partial += 1
            elif raw.strip():
                self.last_stats.skipped_corrupt += 1
        return records

    def recent_for_request(self, request_id: str, **fields: object) -> list[dict[str, object]]:
        """Recent records of one request (optionally matching more fields)."""
        wanted = {"request_id": request_id, **fields}
        return [r for r in self.recent() if all(r.get(k) == v for k, v in wanted.items())]

    def exists(self) -> bool:
        return self.path.is_file()

    def where(self, **fields: object) -> list[dict[str, object]]:
        """Records whose fields equal every given value (e.g. `team="ops", project="finops"`)."""
        return [r for r in self.records() if all(r.get(k) == v for k, v in fields.items())]

    def events(self, name: str) -> list[dict[str, object]]:
        return self.where(event=name)

    def for_request(self, request_id: str) -> list[dict[str, object]]:
        return self.where(request_id=request_id)

    def since(self, moment: datetime | str) -> list[dict[str, object]]:
        """Records at or after a moment (timestamps are UTC ISO-8601, so strings compare)."""
        if isinstance(moment, str):
            # Normalise "…T10:15:00Z" to the files' "…T10:15:00.000Z" so strings compare.
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        floor = iso_ts(moment)
        return [r for r in self.records() if str(r.get("ts", "")) >= floor]

    def count(self) -> int:
        return len(self.records())

    def __len__(self) -> int:
        return self.count()
