"""`nexus autoscore`: the scorecard filled from the last hours of logs (seed v6.11)."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def add_autoscore_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "autoscore",
        help="score the last 2-4 hours of logs into the filled scorecard",
        description="Read the audit log and the ledger of the last hours and fill the scorecard: "
        "rows 1, 4 and 5 from what the logs show (llm_success, llm_dedupe_hit, team/project "
        "tags), rows 3, 7 and 8 MANUAL, rows 2 and 6 NOT RUN. Exit 0 when every signal was "
        "found, 1 when one is missing.",
    )
    parser.add_argument(
        "--topology", default="single", help="shown on the card (e.g. single+redis)"
    )
    parser.add_argument(
        "--providers", default="", help="shown on the card (default: the configured ones)"
    )
    parser.add_argument(
        "--hours", type=_hours, default=4.0, help="how far back to read, 2-4 (default 4)"
    )
    parser.add_argument(
        "--out",
        help="the filled card (default: templates/REHEARSAL_SCORECARD_FILLED.md here; a .json "
        "twin beside it)",
    )
    parser.add_argument("--audit", help="the audit log (default: LLM_AUDIT_LOG_PATH)")
    parser.add_argument("--ledger", help="the cost ledger (default: LLM_COST_LEDGER_PATH)")
    parser.set_defaults(handler=run_autoscore)


def _hours(raw: str) -> float:
    from .checks.autoscore import MAX_HOURS, MIN_HOURS

    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not MIN_HOURS <= value <= MAX_HOURS:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is invalid for --hours: expected {MIN_HOURS:g}-{MAX_HOURS:g}"
        )
    return value


def _command(args: argparse.Namespace) -> str:
    """The run as a command line, from what was parsed (the shim and `nexus` differ in argv)."""
    parts = ["nexus", "autoscore", "--topology", args.topology, "--hours", f"{args.hours:g}"]
    optional = ("providers", "out", "audit", "ledger")
    for name in optional:
        if getattr(args, name):
            parts += [f"--{name}", getattr(args, name)]
    return " ".join(shlex.quote(part) for part in parts)


def run_autoscore(args: argparse.Namespace) -> int:
    import nexus_llm
    from nexus_llm import Settings

    from .checks.autoscore import default_output, read_window, score, window_start
    from .cli import EXIT_NG, EXIT_OK, EXIT_USAGE
    from .environments import usable_providers
    from .scorecard import PASS, build_scorecard, write_scorecard

    settings = Settings.from_env()
    audit = Path(args.audit) if args.audit else settings.audit_log_path
    ledger = Path(args.ledger) if args.ledger else settings.cost_ledger_path
    now = datetime.now(UTC)
    window = read_window(audit, ledger, since=window_start(now, args.hours))
    outcomes = score(
        window, default_team=settings.default_team, default_project=settings.default_project
    )
    label = os.environ.get("NEXUS_ENV", "").strip() or "this host"
    # Lines the `local` environment wrote came from the emulator: the card must say so.
    emulated = "local" in window.envs
    envs = ", ".join(sorted(window.envs)) or "none"
    header = {
        "date": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "env": label,
        "env_description": f"{label} — logs since {window.since} (env labels: {envs}): "
        f"{audit}, {ledger}",
        "emulator": "yes" if emulated else "no",
        "topology": args.topology,
        "providers": args.providers or ", ".join(usable_providers(settings)) or "none configured",
        "versions": f"pytest-nexus-rehearsal {nexus_llm.__version__}, "
        f"Python {platform.python_version()}",
        "git_commit": "",
        "command": _command(args),
    }
    card = build_scorecard(outcomes, header)
    out = Path(args.out) if args.out else default_output()
    try:
        twin = write_scorecard(card, out)
    except OSError as exc:
        print(f"nexus autoscore: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    for row in card.rows:
        print(
            f"{row.item.row:>10}  {row.status:<13} {row.item.title}: {row.measured or row.detail}"
        )
    print(f"  verdict: {card.verdict}")
    print(f"  scorecard written to {out} (+ {twin.name})")
    autoscore = next(r for r in card.rows if r.item.row == "autoscore")
    if autoscore.status != PASS:
        print(f"  what to check: {autoscore.what_to_check}")
        return EXIT_NG
    return EXIT_OK
