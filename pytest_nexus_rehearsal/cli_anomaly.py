"""`nexus anomaly` (check 3, and the anomaly watch cron job) and `nexus sink`.

`nexus anomaly --dry-run` evaluates every rule and prints each value beside its threshold;
nothing is sent and no state changes (exit 0). Without `--dry-run` the run moves the alert book
and delivers what is due: exit 0 when every due message reached a channel (or nothing was
due), 3 when the webhook failed (the message stays spooled for the next run), 2 when alerts are
due but no webhook is configured. `--env local` sends to a webhook sink started for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from nexus_llm.config import MAX_WINDOW_MIN

if TYPE_CHECKING:
    from nexus_llm.alert.watch import WatchResult
    from nexus_llm.config import Settings

    from .sink import WebhookSink

WEBHOOK_HINT = (
    "webhook error (401/404) or timeout: check SLACK_WEBHOOK_URL / TEAMS_WEBHOOK_URL (404: the "
    "webhook was removed or the URL is wrong; 401/403: a bad token or signature; legacy Teams "
    "connector URLs are retired), NOTIFY_PREFER, and that this host reaches the webhook; the "
    "alert stays spooled and the next run retries it"
)


def _number(
    name: str, *, whole: bool = False, zero_ok: bool = False, most: float | None = None
) -> Callable[[str], Any]:
    rule = "a whole number" if whole else "a number"
    rule += " >= 0" if zero_ok else " > 0"
    if most is not None:
        rule += f" and <= {most:g}"

    def convert(raw: str) -> float | int:
        try:
            value: float | int = int(raw) if whole else float(raw)
        except ValueError:
            value = -1
        # NaN, infinity, negatives and out-of-range values are all refused, as in the env vars.
        finite = value == value and value not in (float("inf"), float("-inf"))
        if not finite or value < 0 or (value == 0 and not zero_ok) or value > (most or value):
            raise argparse.ArgumentTypeError(f"{raw!r} is invalid: expected {rule}")
        return value

    return convert


def add_anomaly_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    anomaly = sub.add_parser(
        "anomaly",
        help="check 3: evaluate the anomaly rules; alert Slack/Teams once per incident",
        description="Read what the audit log and the ledger gained since the last run, "
        "evaluate the cost-burn, 429-burst and breaker-open rules over the window, and send "
        "fired / repeated / resolved alerts (one message per run). Flags override the "
        "ANOMALY_* variables for this run.",
    )
    anomaly.add_argument(
        "--dry-run", action="store_true", help="evaluate and print only: send nothing"
    )
    anomaly.add_argument(
        "--window-min",
        type=_number("--window-min", whole=True, most=MAX_WINDOW_MIN),
        help="the window in whole minutes (default: ANOMALY_WINDOW_MIN)",
    )
    anomaly.add_argument(
        "--cost-threshold",
        type=_number("--cost-threshold", zero_ok=True, most=10**9),
        metavar="USD_PER_HOUR",
        help="cost burn threshold in USD per hour (default: ANOMALY_COST_USD_RATE_THRESHOLD)",
    )
    anomaly.add_argument(
        "--429-threshold",
        dest="burst_threshold",
        type=_number("--429-threshold", whole=True, most=10**9),
        metavar="N",
        help="429 answers in the window that fire (default: ANOMALY_429_BURST_THRESHOLD)",
    )
    anomaly.add_argument(
        "--breaker-open-min",
        type=_number("--breaker-open-min", most=MAX_WINDOW_MIN),
        help="minutes a breaker stays open before it fires (default: ANOMALY_BREAKER_OPEN_MIN)",
    )
    anomaly.add_argument(
        "--repeat-interval-min",
        type=_number("--repeat-interval-min", most=4 * MAX_WINDOW_MIN),
        help="minutes before a still-firing alert is sent again "
        "(default: ANOMALY_REPEAT_INTERVAL_MIN, 240)",
    )
    anomaly.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="read the files from scratch and leave no checkpoint",
    )
    anomaly.add_argument(
        "--watch",
        action="store_true",
        help="run as the scheduled anomaly_watch job: record a job_run event and the "
        "last-success metric (what `nexus cron run anomaly_watch` does)",
    )
    anomaly.add_argument(
        "--env",
        default=None,
        help="'local' sends to a webhook sink started for this run; another name loads that "
        "profile (default: the process environment)",
    )
    anomaly.set_defaults(handler=cmd_anomaly)

    sink = sub.add_parser(
        "sink", help="run a local Slack/Teams webhook sink on 127.0.0.1 until Ctrl-C"
    )
    sink.add_argument("--port", type=_port, default=8766, help="default: 8766 (0: any free)")
    sink.add_argument("--host", default="127.0.0.1", help="a loopback address")
    sink.set_defaults(handler=cmd_sink)


def _port(raw: str) -> int:
    from .cli import _port as port

    return port(raw)


def cmd_anomaly(args: argparse.Namespace) -> int:
    if args.watch:
        from nexus_llm.observe.audit import AuditLog
        from nexus_llm.schedule.runs import run_job

        from .environments import configured_settings

        settings = configured_settings(_env_name(args))
        audit = AuditLog(settings.audit_log_path, env=settings.env)
        return run_job("anomaly_watch", lambda: _anomaly(args), audit=audit)
    return _anomaly(args)


def _env_name(args: argparse.Namespace) -> str:
    return str(args.env or os.environ.get("NEXUS_ENV", "").strip() or "default")


def _anomaly(args: argparse.Namespace) -> int:
    from nexus_llm.alert.anomaly import Thresholds
    from nexus_llm.alert.watch import AnomalyWatch
    from nexus_llm.state.base import StoreUnavailableError

    from .cli import EXIT_DEPENDENCY, EXIT_OK
    from .environments import LOCAL, configured_settings

    name = _env_name(args)
    settings = configured_settings(name)
    thresholds = Thresholds.from_settings(settings).override(
        window_min=args.window_min,
        cost_usd_per_hour=args.cost_threshold,
        rate_limit_burst=args.burst_threshold,
        breaker_open_min=args.breaker_open_min,
    )
    repeat_min = args.repeat_interval_min or settings.anomaly_repeat_interval_min
    with _local_sink(name == LOCAL) as sink:
        if sink is not None:
            settings = _pointed_at_sink(settings, sink)
        try:
            with AnomalyWatch(
                settings,
                thresholds=thresholds,
                repeat_interval_s=repeat_min * 60,
                checkpoint=not args.no_checkpoint,
            ) as watch:
                result = watch.dry_run() if args.dry_run else watch.run()
        except StoreUnavailableError as exc:
            print(
                f"nexus anomaly: the alert state store is unavailable ({exc}); nothing was "
                "sent rather than risk duplicate alerts",
                file=sys.stderr,
            )
            return EXIT_DEPENDENCY
        print(render_result(result, env=name))
        if sink is not None:
            received = sink.received()
            print(f"  the local webhook sink received {len(received)} message(s)")
        return _exit_code(result) if not args.dry_run else EXIT_OK


def _exit_code(result: WatchResult) -> int:
    from .cli import EXIT_DEPENDENCY, EXIT_OK, EXIT_USAGE

    if not result.delivery_failed:
        return EXIT_OK
    if not result.channels:
        return EXIT_USAGE
    return EXIT_DEPENDENCY


NO_WEBHOOK_HINT = (
    "no webhook configured: set SLACK_WEBHOOK_URL and/or TEAMS_WEBHOOK_URL (in the cron job's "
    "--env-file too); the alert stays spooled and the next run delivers it"
)


def hint_for(result: WatchResult) -> str:
    """The seed's NG hint, narrowed to what actually went wrong."""
    if not result.channels:
        return NO_WEBHOOK_HINT
    return WEBHOOK_HINT


def render_result(result: WatchResult, *, env: str) -> str:
    """The run as a person reads it: each value beside its threshold, then what was sent."""
    t = result.thresholds
    mode = "dry run: nothing is sent, nothing changes" if result.dry_run else "live"
    stats = result.scan
    source = "from the checkpoint" if stats.from_checkpoint else "from scratch"
    lines = [
        f"nexus anomaly — env {env} ({mode})",
        f"  window {t.window_min:g} min ending {result.now.strftime('%Y-%m-%dT%H:%MZ')}; read "
        f"{stats.lines_read:,} line(s), {stats.bytes_read:,} bytes {source}"
        + (f"; {stats.corrupt} damaged line(s) skipped" if stats.corrupt else ""),
    ]
    lines += [f"  note: {note}" for note in stats.notes]
    for evaluation in result.evaluations:
        mark = "FIRING" if evaluation.firing else "ok"
        covered = (
            " — over, but the team/project alert above covers it"
            if evaluation.rule == "cost_burn_total"
            and not evaluation.firing
            and evaluation.value > evaluation.threshold
            else ""
        )
        lines.append(f"  [{mark:>6}] {evaluation.describe()}{covered}")
    channels = result.channels
    route = (
        f"{channels[0]}" + (f" (fallback: {', '.join(channels[1:])})" if channels[1:] else "")
        if channels
        else "no webhook configured (SLACK_WEBHOOK_URL / TEAMS_WEBHOOK_URL)"
    )
    firing = len(result.firing)
    if result.dry_run:
        lines.append(f"  would notify: {route}")
        lines += [f"  warning: {problem}" for problem in result.channel_problems]
        lines.append(f"ANOMALY DRY RUN OK: {firing} rule(s) firing, nothing sent")
        return "\n".join(lines)
    if result.lock_busy:
        lines.append("  another anomaly run holds the alert lock: this run decided nothing")
        lines.append("ANOMALY OK (skipped: another run is in progress)")
        return "\n".join(lines)
    for alert in result.due:
        lines.append(f"  {alert.kind}: {alert.summary()}")
    message = result.message
    if message is None:
        lines.append(f"ANOMALY OK: {firing} rule(s) firing, nothing due to send")
    elif result.delivery_failed:
        detail = result.delivery.describe() if result.delivery else f"not delivered: {route}"
        lines.append(f"  {detail}; {result.pending} message(s) kept in the spool")
        lines.append("ANOMALY NG: the alert did not reach a channel")
        lines.append(f"  what to check: {hint_for(result)}")
    else:
        assert result.delivery is not None
        lines.append(
            f"  sent 1 message with {len(message.alerts)} alert(s) to {result.delivery.channel}"
            f" ({result.delivery.describe()})"
        )
        lines.append(f"ANOMALY OK: {firing} rule(s) firing, {len(message.alerts)} alert(s) sent")
    return "\n".join(lines)


@contextlib.contextmanager
def _local_sink(wanted: bool) -> Iterator[WebhookSink | None]:
    if not wanted:
        yield None
        return
    from .sink import WebhookSink

    with WebhookSink() as sink:
        yield sink


def _pointed_at_sink(settings: Settings, sink: WebhookSink) -> Settings:
    from nexus_llm.config import Secret

    return settings.replace(
        slack_webhook_url=Secret(sink.slack_url), teams_webhook_url=Secret(sink.teams_url)
    )


def cmd_sink(args: argparse.Namespace) -> int:
    from .cli import EXIT_DEPENDENCY, EXIT_OK, UsageError
    from .sink import serve_sink

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.host.startswith("127."):
        raise UsageError(f"--host {args.host}: the sink listens on loopback only (127.0.0.1)")
    try:
        serve_sink(args.host, args.port)
    except OSError as exc:
        print(
            f"nexus sink: cannot listen on {args.host}:{args.port} ({exc.strerror})",
            file=sys.stderr,
        )
        return EXIT_DEPENDENCY
    return EXIT_OK
