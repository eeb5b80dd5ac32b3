"""pytest wiring: options, markers, outcome collection and the scorecard (pytest11 entry point).

Installed into every pytest run of the environment, so it costs nothing until used: importing
this module pulls in no HTTP client and starts nothing; fixtures start the emulator on demand.

Worker side (or a plain run): tags each rehearsal test's reports with its scorecard row and
turns `manual` checks into skips. Controller side (or a plain run): gathers the reports (xdist
sends workers' reports here, user_properties included) and writes the scorecard at the end.
"""

from __future__ import annotations

import os

import pytest

from . import markers
from .checklist import ROWS
from .collector import MANUAL_PREFIX, ROW_KEY, ScorecardCollector
from .fixtures import (  # noqa: F401 - importing registers them as the plugin's fixtures
    audit_log,
    cost_ledger,
    llm_client,
    nexus_emulator,
    nexus_env,
    scorecard_row,
)
from .options import add_options, env_was_chosen, resolve_env_name, scorecard_path, template_path


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for text in markers.MARKER_HELP.values():
        config.addinivalue_line("markers", text)
    name, source = resolve_env_name(config)
    providers = "not checked"
    if env_was_chosen(config) or scorecard_path(config) is not None:
        providers = _check_environment(config, name, source)
        template = template_path(config)
        if template is not None and not template.is_file():
            raise pytest.UsageError(f"--scorecard-template={template}: no such file")
    config.pluginmanager.register(ScorecardCollector(config, providers), "nexus-scorecard")


def _check_environment(config: pytest.Config, name: str, source: str) -> str:
    """Fail fast, in one line, on a bad environment name or setting; return its providers."""
    from nexus_llm.errors import ConfigError

    from .environments import LOCAL, check_env_name, load_profile

    try:
        check_env_name(name, source=source)
        if name == LOCAL:
            return "gemini (emulator)"
        from nexus_llm.config import Settings

        profile, _where = load_profile(name, config.rootpath)
        settings = Settings.from_env({**profile, **os.environ, "NEXUS_ENV": name})
    except ConfigError as exc:
        raise pytest.UsageError(f"nexus rehearsal: {exc}") from None
    names = [p.name for p in settings.configured_providers()]
    return ", ".join(names) if names else "none configured"


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _is_rehearsal_run(config):
        return None
    name, source = resolve_env_name(config)
    if name == "local":
        return (
            f"nexus rehearsal: env=local ({source}) — EMULATOR: the built-in provider emulator "
            "answers on 127.0.0.1; no real provider is called"
        )
    return f"nexus rehearsal: env={name} ({source}) — real providers"


def _is_rehearsal_run(config: pytest.Config) -> bool:
    if env_was_chosen(config) or scorecard_path(config) is not None:
        return True
    return any("rehearsal_tests" in str(arg) for arg in config.invocation_params.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        mark = item.get_closest_marker(markers.CHECK)
        if mark is None:
            continue
        row = str(mark.args[0]) if mark.args else ""
        if row not in ROWS:
            raise pytest.UsageError(
                f"{item.nodeid}: nexus_check({row!r}) is not a scorecard row; allowed: "
                + ", ".join(ROWS)
            )
        item.user_properties.append((ROW_KEY, row))


def pytest_runtest_setup(item: pytest.Item) -> None:
    mark = item.get_closest_marker(markers.MANUAL)
    if mark is not None:
        instructions = str(mark.args[0]) if mark.args else "see the checklist"
        pytest.skip(MANUAL_PREFIX + instructions)
