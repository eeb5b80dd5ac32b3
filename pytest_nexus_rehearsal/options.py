"""Command-line and ini options, resolved CLI → environment → ini → default, with the source
named in every error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_HELP = (
    "environment to rehearse: 'local' (default; built-in emulator, temporary logs) or a profile "
    "name from nexus.toml / [tool.nexus] (also NEXUS_ENV, ini nexus_env)"
)
SCORECARD_HELP = "write the filled scorecard to this markdown file (and a .json twin beside it)"
TEMPLATE_HELP = "render the scorecard with this jinja2 template instead of the shipped form"
TOPOLOGY_HELP = "topology shown on the scorecard, e.g. 'single+redis' (default: 'single')"
SEND_ALERTS_HELP = (
    "check 3 in a real environment posts its rehearsal alert to the real Slack/Teams webhook "
    "(without this flag it goes to a local webhook sink; `local` always uses the sink)"
)
LOAD_HELP = (
    "check 6 in a real environment sends its load (50 calls at concurrency 5) to the real "
    "provider; without this flag the row is NOT RUN there (`local` always runs it)"
)
DEFAULT_ENV = "local"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("nexus", "Nexus operations rehearsal")
    group.addoption("--nexus-env", dest="nexus_env", default=None, metavar="NAME", help=ENV_HELP)
    group.addoption(
        "--scorecard", dest="nexus_scorecard", default=None, metavar="PATH", help=SCORECARD_HELP
    )
    group.addoption(
        "--scorecard-template",
        dest="nexus_scorecard_template",
        default=None,
        metavar="PATH",
        help=TEMPLATE_HELP,
    )
    group.addoption(
        "--nexus-topology", dest="nexus_topology", default=None, metavar="TEXT", help=TOPOLOGY_HELP
    )
    group.addoption(
        "--nexus-send-alerts",
        dest="nexus_send_alerts",
        action="store_true",
        default=False,
        help=SEND_ALERTS_HELP,
    )
    group.addoption(
        "--nexus-load", dest="nexus_load", action="store_true", default=False, help=LOAD_HELP
    )
    parser.addini("nexus_env", ENV_HELP, default=None)


def resolve_env_name(config: pytest.Config) -> tuple[str, str]:
    """(name, where it came from)."""
    cli = config.getoption("nexus_env")
    if cli:
        return str(cli), "--nexus-env"
    from_env = os.environ.get("NEXUS_ENV", "").strip()
    if from_env:
        return from_env, "NEXUS_ENV"
    ini = config.getini("nexus_env")
    if ini:
        return str(ini), "ini nexus_env"
    return DEFAULT_ENV, "default"


def scorecard_path(config: pytest.Config) -> Path | None:
    value = config.getoption("nexus_scorecard")
    return Path(value) if value else None


def template_path(config: pytest.Config) -> Path | None:
    value = config.getoption("nexus_scorecard_template")
    return Path(value) if value else None
