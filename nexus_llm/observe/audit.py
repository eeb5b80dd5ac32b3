"""The audit log: one JSONL event per thing that happened (DESIGN §4.2).

Every event carries `ts`, `event`, `env` and whatever the caller adds; call events also carry
`request_id`, `provider`, `model`, `purpose`, `team`, `project`. Prompts appear only as a hash
and a length unless the user opted in (`LLM_LOG_PROMPTS=true`); keys and webhook URLs never.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from .jsonl import JsonlAppender

EVENTS: Final = frozenset(
    {
        "llm_success",
        "llm_error",
        "llm_retry",
        "llm_fallback",
        "llm_dedupe_hit",
        "breaker_open",
        "breaker_half_open",
        "breaker_closed",
        "alert_fired",
        "alert_repeated",
        "alert_resolved",
        "notify_failed",
        "job_run",
        "state_degraded",
        "state_recovered",
    }
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_ts(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a `Z`, the form every file uses."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    def __init__(self, path: str | os.PathLike[str], *, env: str, clock: Clock = utc_now) -> None:
        self._out = JsonlAppender(path)
        self.path = self._out.path
        self._env = env
        self._clock = clock

    def emit(self, event: str, **fields: object) -> dict[str, object]:
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}; known: {', '.join(sorted(EVENTS))}")
        reserved = fields.keys() & {"ts", "event", "env"}
        if reserved:
            raise ValueError(f"audit fields {sorted(reserved)} are set by the log itself")
        record: dict[str, object] = {"ts": iso_ts(self._clock()), "event": event, "env": self._env}
        record.update(fields)
        self._out.append(record)
        return record
