"""One scheduled run, recorded: a `job_run` audit event and, on success, the last-success gauge.

Cron itself keeps no record a check could read, and a job that crashes before logging leaves
nothing at all. Wrapping the run means every tick that started leaves exactly one event —
success or failure, with the reason in one line — and `nexus cron check` can tell a missed
tick (no event) from a failed one (an event with its error).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from nexus_llm.observe.audit import AuditLog, iso_ts, utc_now
from nexus_llm.observe.metrics import JOB_LAST_SUCCESS

EXIT_DEPENDENCY: Final = 3
EXIT_INTERRUPTED: Final = 130

# What the `nexus` exit codes mean, so a failed run's error says more than a number.
_EXIT_MEANING: Final = {
    1: "the check is NG",
    2: "bad input or config",
    3: "a dependency failed",
    EXIT_INTERRUPTED: "interrupted",
}


def run_job(
    name: str,
    action: Callable[[], int],
    *,
    audit: AuditLog,
    clock: Callable[[], datetime] = utc_now,
    on_error: Callable[[str], None] | None = None,
) -> int:
    """Run `action` (its return value is an exit code, 0 = ok) and record the run.

    An exception inside the action is the job failing, not the scheduler: it becomes exit
    code 3 with the exception's type and first line as the error, never a traceback.
    `on_error` receives that one-line error (the CLI prints it into the job's cron log).
    Returns the exit code.
    """
    started = clock()
    error: str | None = None
    try:
        code = action()
    except KeyboardInterrupt:
        code, error = EXIT_INTERRUPTED, "interrupted"
    except SystemExit as exc:  # argparse inside the action exits instead of returning
        code = _exit_code(exc.code)
        if isinstance(exc.code, str) and exc.code.strip():
            error = exc.code.strip().splitlines()[0][:300]
    except Exception as exc:
        code, error = EXIT_DEPENDENCY, describe_exception(exc)
    ended = clock()
    if code != 0 and error is None:
        error = f"exit code {code}" + (f" ({_EXIT_MEANING[code]})" if code in _EXIT_MEANING else "")
    if code == 0:
        JOB_LAST_SUCCESS.labels(name).set(ended.timestamp())
    fields: dict[str, object] = {
        "job": name,
        "started_at": iso_ts(started),
        "ended_at": iso_ts(ended),
        "duration_s": round(max((ended - started).total_seconds(), 0.0), 3),
        "outcome": "ok" if code == 0 else "failed",
        "exit_code": code,
    }
    if error is not None:
        fields["error"] = error
        if on_error is not None:
            on_error(error)
    audit.emit("job_run", **fields)
    return code


def describe_exception(exc: BaseException) -> str:
    """`Type: first line of the message`, or just the type when the message is empty."""
    lines = str(exc).strip().splitlines()
    first = lines[0].strip() if lines else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1  # sys.exit("message"): Python prints the message and exits 1
