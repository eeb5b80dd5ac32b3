"""`nexus cron`: print the crontab, run one scheduled job with a record, check that none was
missed (seed check 7).

`cli.py` imports this module to register the subcommand, so the CLI's own names (exit codes,
`UsageError`, `main`) are imported inside the handlers, after `cli` has finished loading.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexus_llm.config import Settings


def add_cron_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `nexus cron print|check|run` on the `nexus` subparsers."""
    cron = sub.add_parser(
        "cron",
        help="check 7: the scheduled jobs — print the crontab, run a job, check for misses",
        description="The seed's scheduled jobs: anomaly_watch (*/5 * * * *) and monthly_report "
        "(0 9 1 * *). Print a crontab for them, run one with a job_run record, or check the "
        "audit log for missed and failed ticks.",
    )
    actions = cron.add_subparsers(dest="action", metavar="ACTION", required=True)

    printer = actions.add_parser(
        "print", help="print a crontab to paste into `crontab -e`", description=_PRINT_HELP
    )
    printer.add_argument(
        "--env-file",
        help="a file of VAR=value lines each job loads (settings and secrets; chmod 600)",
    )
    printer.add_argument(
        "--log-dir", help="where job logs go (default: the directory of LLM_AUDIT_LOG_PATH)"
    )
    printer.add_argument(
        "--workdir", help="the directory jobs run in (default: the current directory)"
    )
    printer.add_argument("--nexus", help="the nexus command to run (default: the one running now)")
    printer.set_defaults(handler=_cmd_print)

    check = actions.add_parser(
        "check",
        help="list missed and failed ticks from the audit log's job_run events",
        description="Expand each job's schedule over the last --since and match every tick "
        "with a job_run event. Exit 0 when every tick ran and succeeded, 1 otherwise.",
    )
    check.add_argument(
        "--since", default="24h", help="how far back: 24h, 90m, 7d, 2d12h (default: 24h)"
    )
    check.add_argument(
        "--audit", help="the audit log (default: LLM_AUDIT_LOG_PATH, with its rotations)"
    )
    check.add_argument(
        "--tz",
        help="the time zone cron runs in, e.g. Asia/Seoul (default: this machine's)",
    )
    check.set_defaults(handler=_cmd_check)

    run = actions.add_parser(
        "run",
        help="run one scheduled job now and record it (what the crontab lines call)",
        description="Run JOB's nexus command, then append one job_run event to the audit log "
        "and, on success, set nexus_job_last_success_timestamp_seconds. Exits with the job's "
        "exit code.",
    )
    run.add_argument("job", metavar="JOB", help="anomaly_watch or monthly_report")
    run.add_argument(
        "--env-file",
        help="load VAR=value lines (dotenv syntax: quotes, export, # comments) into the "
        "environment first; variables already set keep their values",
    )
    run.set_defaults(handler=_cmd_run)


_PRINT_HELP = (
    "Print crontab lines for the scheduled jobs: absolute, quoted paths, the environment file "
    "loaded by each line, and each job's output appended to <log dir>/cron_<job>.log. The "
    "times are the machine's local time."
)


def _cmd_print(args: argparse.Namespace) -> int:

    from nexus_llm.schedule.crontab import render_crontab

    from .cli import EXIT_OK, UsageError

    workdir = Path(args.workdir).absolute() if args.workdir else Path.cwd()
    if not workdir.is_dir():
        raise UsageError(f"--workdir {args.workdir}: no such directory")
    if args.log_dir:
        log_dir = Path(args.log_dir).absolute()
    else:
        log_dir = _settings().audit_log_path.parent.absolute()
    env_file = None
    if args.env_file:
        env_file = Path(args.env_file).absolute()
        if not env_file.is_file():
            raise UsageError(f"--env-file {args.env_file}: no such file")
    nexus = Path(args.nexus).absolute() if args.nexus else _running_nexus()
    if not nexus.is_file():
        raise UsageError(f"--nexus {args.nexus}: no such file")
    try:
        text = render_crontab(nexus=nexus, workdir=workdir, env_file=env_file, log_dir=log_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(text)
    # Notes go to stderr so `nexus cron print > file` stays a clean crontab.
    if not log_dir.is_dir():
        _note(f"{log_dir} does not exist yet: create it (mkdir -p) before installing")
    if env_file is not None and _shared(env_file):
        _note(f"{env_file} is readable by other users: chmod 600 it (it holds secrets)")
    return EXIT_OK


def _running_nexus() -> Path:
    """The `nexus` script of this installation: the one running, else the one beside this
    interpreter, else the first on PATH."""
    from .cli import UsageError

    argv0 = Path(sys.argv[0])
    candidates = [
        argv0 if argv0.name == "nexus" else None,
        Path(sys.executable).parent / "nexus",
        Path(found) if (found := shutil.which("nexus")) else None,
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate.absolute()
    raise UsageError("cannot find the nexus command: pass its absolute path with --nexus")


def _shared(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def _note(text: str) -> None:
    print(f"nexus cron print: note: {text}", file=sys.stderr)


def _cmd_check(args: argparse.Namespace) -> int:

    from nexus_llm.observe.audit import utc_now
    from nexus_llm.observe.jsonl import expand_sources
    from nexus_llm.schedule.check import check_runs, local_timezone, parse_since

    from .checks.cron import SEED_NG_HINT, read_job_runs
    from .cli import EXIT_NG, EXIT_OK, UsageError

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    tz = _zone(args.tz) if args.tz else local_timezone()
    audit = Path(args.audit) if args.audit else _settings().audit_log_path
    if not expand_sources([audit]):
        where = "--audit" if args.audit else "LLM_AUDIT_LOG_PATH"
        raise UsageError(
            f"{where} {audit}: no such file (no job has recorded a run there; is the crontab "
            "installed, and does cron use the same LLM_AUDIT_LOG_PATH?)"
        )
    records, stats = read_job_runs(audit)
    until = utc_now()
    report = check_runs(records, since=until - since, until=until, tz=tz)
    print(report.render())
    if stats.skipped:
        print(f"  audit log: {stats.describe()}")
    if not report.ok:
        print(f"  what to check: {SEED_NG_HINT}")
    return EXIT_OK if report.ok else EXIT_NG


def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from .cli import UsageError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"--tz {name!r}: unknown time zone: expected an IANA name such as Asia/Seoul or UTC"
        ) from None


def _cmd_run(args: argparse.Namespace) -> int:

    from nexus_llm.observe.audit import AuditLog, iso_ts, utc_now
    from nexus_llm.schedule.jobs import job_argv, job_named
    from nexus_llm.schedule.runs import run_job

    from . import cli

    try:
        job = job_named(args.job)
    except ValueError as exc:
        raise cli.UsageError(str(exc)) from None
    if args.env_file:
        _load_env_file(Path(args.env_file))
    settings = _settings()
    log_dir = settings.audit_log_path.parent.absolute()
    # Cron starts jobs in local time, so "the previous month" is the local calendar's.
    argv = job_argv(job.name, datetime.now().astimezone(), log_dir=log_dir)
    audit = AuditLog(settings.audit_log_path, env=settings.env)

    def failed(error: str) -> None:
        print(f"{iso_ts(utc_now())} nexus cron run {job.name}: {error}", file=sys.stderr)

    try:
        code = run_job(job.name, lambda: cli.main(argv), audit=audit, on_error=failed)
    except OSError as exc:
        # The job ran but its record could not be written: the seed's "permission problem".
        print(
            f"nexus cron run {job.name}: cannot write the audit log {audit.path} "
            f"({exc.strerror or exc}); this run will show as missed",
            file=sys.stderr,
        )
        return cli.EXIT_DEPENDENCY
    outcome = "ok" if code == 0 else "failed"
    # A timestamp on every line: this goes to the job's cron log, read days later.
    print(f"{iso_ts(utc_now())} nexus cron run {job.name}: {outcome} (exit {code})")
    return code


def _settings() -> Settings:
    """The settings the scheduled jobs run with: NEXUS_ENV's profile (if any) under the
    process environment, as `nexus anomaly` reads them, so a job and its `job_run` record
    always share one audit log."""
    from .environments import configured_settings

    return configured_settings(os.environ.get("NEXUS_ENV", "").strip() or "default")


def _load_env_file(path: Path) -> None:
    """Put the file's variables into this process's environment (set ones win, as cron's)."""
    from dotenv import dotenv_values

    from .cli import UsageError

    if not path.is_file():
        raise UsageError(f"--env-file {path}: no such file")
    try:
        values = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--env-file {path}: cannot read it ({exc})") from None
    for name, value in values.items():
        if value is not None and name not in os.environ:
            os.environ[name] = value
