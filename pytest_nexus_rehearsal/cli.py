"""The `nexus` command. Exit codes: 0 OK, 1 the check is NG, 2 bad input or config,
3 a dependency failed. User mistakes get one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn, TypedDict

from nexus_llm.errors import ConfigError

if TYPE_CHECKING:
    from nexus_llm import Client

    from .checks.result import CheckResult
    from .environments import NexusEnvironment

EXIT_OK, EXIT_NG, EXIT_USAGE, EXIT_DEPENDENCY = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input that is not a single setting: the message is the whole story."""


def _label_arg(name: str) -> Callable[[str], str]:
    from nexus_llm.config import label_is_valid

    def convert(raw: str) -> str:
        if not label_is_valid(raw):
            raise argparse.ArgumentTypeError(
                f"{raw!r} is invalid for --{name}: expected 1-64 characters of letters, digits, "
                "'.', '_', '-' or '/'"
            )
        return raw

    return convert


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is invalid for --port: expected 0-65535")
    return value


def _bounded_int(flag: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, or one line saying so."""

    def convert(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{raw!r} is invalid for {flag}: expected {low}-{high}"
            )
        return value

    return convert


_count = _bounded_int("--n", 2, 100)


def _call_flags(parser: argparse.ArgumentParser, *, tags_required: bool = False) -> None:
    """The flags every calling subcommand shares, as the seed spells them."""
    parser.add_argument("--prompt", required=True, help="the prompt to send")
    parser.add_argument("--purpose", required=True, type=_label_arg("purpose"))
    default = "" if tags_required else " (default: LLM_DEFAULT_TEAM)"
    parser.add_argument(
        "--team", type=_label_arg("team"), required=tags_required, help="the team" + default
    )
    parser.add_argument(
        "--project",
        type=_label_arg("project"),
        required=tags_required,
        help="the project" + default.replace("TEAM", "PROJECT"),
    )
    parser.add_argument("--provider", help="call only this provider")
    parser.add_argument(
        "--env",
        default=None,
        help="'local' runs against the built-in emulator; another name loads that profile "
        "(default: NEXUS_ENV, else the process environment as it is)",
    )


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (not the whole usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .checks.load import MAX_CALLS, MAX_CONCURRENCY

    parser = _OneLineParser(prog="nexus", description="Rehearse the LLM operations loop (Nexus).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    smoke = sub.add_parser(
        "smoke",
        help="check 1: one call, then look for its audit and ledger lines",
        description="Make one LLM call and check that it left an llm_success audit line and a "
        "ledger line with a cost (or approx_tokens=true).",
    )
    _call_flags(smoke)
    smoke.set_defaults(handler=_cmd_smoke)

    dedupe = sub.add_parser(
        "dedupe",
        help="check 4: N identical calls at once reach the provider once",
        description="Send the same prompt N times at once and check that at most one call "
        "reached the provider and the rest are llm_dedupe_hit with a zero-cost ledger line.",
    )
    _call_flags(dedupe)
    dedupe.add_argument("--n", type=_count, default=5, help="how many identical calls (2-100)")
    dedupe.set_defaults(handler=_cmd_dedupe)

    report = sub.add_parser(
        "report",
        help="check 2: the FinOps report for a date range",
        description="Aggregate the cost ledger (and errors from the audit log) for a range of "
        "UTC days, both ends included, into markdown, JSON or CSV.",
    )
    report.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    report.add_argument("--to", dest="end", required=True, help="last day (included)")
    report.add_argument("--out", required=True, help="where to write the report")
    report.add_argument("--format", choices=("md", "json", "csv"), default="md")
    report.add_argument(
        "--ledger",
        action="append",
        help="a ledger path or glob, repeatable (default: LLM_COST_LEDGER_PATH and its rotations)",
    )
    report.add_argument(
        "--audit",
        action="append",
        help="an audit log path or glob, repeatable "
        "(default: LLM_AUDIT_LOG_PATH and its rotations)",
    )
    report.add_argument("--template", help="a jinja2 template to render markdown with")
    report.add_argument(
        "--no-rollups",
        action="store_true",
        help="read every ledger from scratch and leave no rollup files",
    )
    report.set_defaults(handler=_cmd_report)

    tagging = sub.add_parser(
        "tagging",
        help="check 5: team/project reach the ledger and split the cost metric",
        description="Call with explicit tags, with nexus_llm.tags() in a thread and in an async "
        "task; check the ledger lines and the cost metric's series.",
    )
    _call_flags(tagging, tags_required=True)
    tagging.set_defaults(handler=_cmd_tagging)

    load = sub.add_parser(
        "load",
        help="check 6: N calls at concurrency C keep p95 and the fail rate low",
        description="Measure this environment's latency with a few sequential calls, then send "
        "N calls from C threads (dedupe off) and check that p95 did not blow up relative to it "
        "and that at most a few calls failed.",
    )
    _call_flags(load)
    load.add_argument(
        "--n", type=_bounded_int("--n", 1, MAX_CALLS), default=50, help="how many calls (1-1000)"
    )
    load.add_argument(
        "--concurrency",
        type=_bounded_int("--concurrency", 1, MAX_CONCURRENCY),
        default=5,
        help="how many calls at once (1-50)",
    )
    load.set_defaults(handler=_cmd_load)

    from .cli_anomaly import add_anomaly_parsers
    from .cli_autoscore import add_autoscore_parser
    from .cli_cron import add_cron_parser

    add_anomaly_parsers(sub)
    add_autoscore_parser(sub)
    add_cron_parser(sub)

    metrics_cmd = sub.add_parser("metrics", help="Prometheus metrics")
    metrics_sub = metrics_cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = metrics_sub.add_parser(
        "serve",
        help="expose the metrics your app processes wrote to PROMETHEUS_MULTIPROC_DIR",
    )
    serve.add_argument("--port", type=_port, default=9464, help="default: 9464")
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    serve.add_argument(
        "--dir", default=None, help="the multiprocess directory (default: PROMETHEUS_MULTIPROC_DIR)"
    )
    serve.set_defaults(handler=_cmd_metrics_serve)

    emulator = sub.add_parser(
        "emulator", help="run the provider emulator on 127.0.0.1 until Ctrl-C"
    )
    emulator.add_argument("--port", type=_port, default=8765, help="default: 8765 (0: any free)")
    emulator.add_argument(
        "--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)"
    )
    emulator.add_argument("--gemini-key", default="emulator-gemini-key")
    emulator.set_defaults(handler=_cmd_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with argparse's one-line error on bad flags
    try:
        return int(args.handler(args))
    except (ConfigError, UsageError) as exc:
        name = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        print(f"nexus {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"nexus {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`nexus … | head`): nothing left to say, and no traceback.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


@contextlib.contextmanager
def _calling_environment(args: argparse.Namespace) -> Iterator[tuple[NexusEnvironment, Client]]:
    """The environment a calling subcommand asked for, checked, with a client on it."""
    from nexus_llm import Client

    from .environments import LOCAL, open_environment, usable_providers

    if not args.prompt.strip():
        raise UsageError('--prompt is empty: give the text to send, e.g. --prompt "hello"')
    try:
        args.prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            "--prompt is not valid UTF-8 text (check the terminal's or the script's encoding)"
        ) from None
    # Only an explicit --env local starts the emulator; NEXUS_ENV is the label of a real
    # environment and never switches the provider by itself.
    name = args.env or os.environ.get("NEXUS_ENV", "").strip() or "default"
    with open_environment(name, emulate=args.env == LOCAL) as env:
        settings = env.settings
        if args.provider is not None and args.provider not in settings.providers:
            raise ConfigError(
                "--provider", args.provider, "one of " + ", ".join(settings.providers)
            )
        usable = [p for p in usable_providers(settings) if args.provider in (None, p)]
        if not usable:
            raise UsageError(_no_provider_message(args.provider, env.is_emulator))
        with Client(settings) as client:
            yield env, client


class CallArgs(TypedDict):
    prompt: str
    purpose: str
    team: str | None
    project: str | None
    provider: str | None


def _call_args(args: argparse.Namespace) -> CallArgs:
    """The seed's call flags, as the checks take them."""
    return {
        "prompt": args.prompt,
        "purpose": args.purpose,
        "team": args.team,
        "project": args.project,
        "provider": args.provider,
    }


def _verdict(command: str, env: NexusEnvironment, result: CheckResult) -> int:
    print(result.render(header=f"nexus {command} — env {env.describe()}"))
    return EXIT_OK if result.ok else EXIT_NG


def _cmd_smoke(args: argparse.Namespace) -> int:
    from .checks.smoke import run_smoke

    with _calling_environment(args) as (env, client):
        return _verdict("smoke", env, run_smoke(client, **_call_args(args)))


def _cmd_dedupe(args: argparse.Namespace) -> int:
    from .checks.dedupe import run_dedupe

    with _calling_environment(args) as (env, client):
        emulator = env.emulator
        counted = args.provider or usable_first(env)
        result = run_dedupe(
            client,
            n=args.n,
            count_requests=(lambda: emulator.request_count(counted)) if emulator else None,
            **_call_args(args),
        )
        return _verdict("dedupe", env, result)


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import jinja2

    from nexus_llm.config import Settings
    from nexus_llm.finops.report import (
        ReportInputError,
        build_report,
        format_usd,
        parse_day,
        render_csv,
        render_json,
        render_markdown,
    )

    settings = Settings.from_env()
    template = Path(args.template) if args.template else None
    if template is not None and not template.is_file():
        raise UsageError(f"--template {template}: no such file")
    try:
        start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
        report = build_report(
            start,
            end,
            args.ledger or [settings.cost_ledger_path],
            args.audit or [settings.audit_log_path],
            use_rollups=not args.no_rollups,
            require_audits=bool(args.audit),
        )
    except ReportInputError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    read = {Path(p).resolve() for p in [*report.sources, *report.audit_sources]}
    if out.resolve() in read:
        raise UsageError(f"--out {out} is one of the files the report reads; name another file")
    renderers = {
        "md": lambda: render_markdown(report, template),
        "json": lambda: render_json(report),
        "csv": lambda: render_csv(report),
    }
    try:
        text = renderers[args.format]()
    except (jinja2.TemplateError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise UsageError(f"--template {args.template}: cannot render ({detail})") from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, "utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write ({exc.strerror})") from None
    if report.empty:
        summary = "no records in the range: $0.00"
    else:
        summary = f"{format_usd(report.cost_usd)} over {report.calls:,} calls"
    skipped = report.skipped_corrupt + report.skipped_partial
    print(
        f"nexus report {report.start}..{report.end} (UTC): {summary}; "
        f"{len(report.sources)} ledger file(s)"
        + (f", {skipped} damaged line(s) skipped" if skipped else "")
        + f" → {out}"
    )
    return EXIT_OK


def _cmd_load(args: argparse.Namespace) -> int:
    from .checks.load import run_load

    with _calling_environment(args) as (env, client):
        result = run_load(client, n=args.n, concurrency=args.concurrency, **_call_args(args))
        return _verdict("load", env, result)


def _cmd_tagging(args: argparse.Namespace) -> int:
    from .checks.tagging import run_tagging

    with _calling_environment(args) as (env, client):
        result = run_tagging(
            client,
            prompt=args.prompt,
            team=args.team,  # required flags for this command: never None
            project=args.project,
            purpose=args.purpose,
            provider=args.provider,
        )
        return _verdict("tagging", env, result)


def _cmd_metrics_serve(args: argparse.Namespace) -> int:
    import time

    from prometheus_client import CollectorRegistry, start_http_server

    from .metrics_files import TolerantMultiProcessCollector

    directory = args.dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not directory:
        raise UsageError(
            "no metrics directory: set PROMETHEUS_MULTIPROC_DIR (in your app processes and "
            "here) or pass --dir; this command serves what those processes wrote"
        )
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "no such directory"
        raise UsageError(f"--dir {directory}: {what}")
    registry = CollectorRegistry()
    registry.register(TolerantMultiProcessCollector(directory))
    try:
        server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    except OSError as exc:
        print(
            f"nexus metrics serve: cannot listen on {args.host}:{args.port} ({exc.strerror})",
            file=sys.stderr,
        )
        return EXIT_DEPENDENCY
    print(
        f"nexus metrics serving http://{args.host}:{server.server_port}/metrics from "
        f"{directory} — Ctrl-C to stop",
        flush=True,
    )
    try:
        while thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return EXIT_OK


def usable_first(env: NexusEnvironment) -> str:
    """The provider a call without --provider goes to first."""
    from .environments import usable_providers

    return usable_providers(env.settings)[0]


def _no_provider_message(provider: str | None, emulated: bool) -> str:
    from nexus_llm.providers import supported_providers

    supported = ", ".join(supported_providers())
    if emulated:
        return f"the local emulator serves {supported} in this version, not {provider}"
    wanted = [provider] if provider else supported_providers()
    return (
        "no LLM provider is configured"
        + (f" for --provider {provider}" if provider else "")
        + f": set {' or '.join(_key_hint(w) for w in wanted)} (this version calls {supported}),"
        " or run with --env local to use the built-in emulator"
    )


def _key_hint(name: str) -> str:
    return {
        "gemini": "GEMINI_API_KEY",
        "openai": "OPENAI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
        "glm": "GLM_API_KEY",
    }.get(name, name)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from nexus_llm.emulator import serve

    try:
        serve(args.host, args.port, gemini_key=args.gemini_key)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        # The emulator's own message names the address and the likely cause.
        print(exc.strerror or f"nexus emulator: {exc}", file=sys.stderr)
        return EXIT_DEPENDENCY
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - `python -m pytest_nexus_rehearsal.cli`
    # Run the package's own copy of this module: under `-m` this file is `__main__`, and the
    # subcommand modules raise the package module's `UsageError`, which only it catches.
    from pytest_nexus_rehearsal.cli import main as package_main

    sys.exit(package_main())
