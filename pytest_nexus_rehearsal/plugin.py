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
    webhook_sink,
    webhook_sink_server,
)
from .options import add_options, resolve_env_name, scorecard_path, template_path


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for text in markers.MARKER_HELP.values():
        config.addinivalue_line("markers", text)
    providers = "not checked"
    if is_rehearsal_run(config):
        # Fail fast, in one line, before a long rehearsal runs: bad names, bad settings, no
        # provider, an unusable scorecard path or template.
        providers = _check_environment(config)
        _check_outputs(config)
    config.pluginmanager.register(ScorecardCollector(config, providers), "nexus-scorecard")


def is_rehearsal_run(config: pytest.Config) -> bool:
    """Whether this session rehearses: asked for explicitly, or running `rehearsal_tests`.

    `NEXUS_ENV` alone does not count: applications set it as their environment label, and
    their own test sessions must not be touched by this plugin.
    """
    if config.getoption("nexus_env") or config.getini("nexus_env"):
        return True
    if scorecard_path(config) is not None:
        return True
    return any("rehearsal_tests" in str(arg) for arg in config.args)


def _check_environment(config: pytest.Config) -> str:
    from nexus_llm.errors import ConfigError

    from .environments import LOCAL, configured_settings, usable_providers

    name, source = resolve_env_name(config)
    try:
        settings = configured_settings(name, source=source, root=config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(f"nexus rehearsal: {exc}") from None
    if name == LOCAL:
        from nexus_llm.emulator import emulated_providers
        from nexus_llm.providers import supported_providers

        served = [p for p in supported_providers() if p in emulated_providers()]
        return ", ".join(served) + " (emulator)"
    usable = usable_providers(settings)
    if not usable:
        raise pytest.UsageError(
            f"nexus rehearsal: environment {name!r} ({source}) has no LLM provider configured: "
            "set GEMINI_API_KEY in the environment, or use --nexus-env=local for the emulator"
        )
    return ", ".join(usable)


def _check_outputs(config: pytest.Config) -> None:
    template = template_path(config)
    if template is not None and not template.is_file():
        raise pytest.UsageError(f"--scorecard-template={template}: no such file")
    path = scorecard_path(config)
    if path is None or hasattr(config, "workerinput"):
        return
    if path.is_dir():
        raise pytest.UsageError(
            f"--scorecard={path}: is a directory; give a file name such as out.md"
        )
    parent = path.parent
    try:  # like --junitxml: missing directories are made, now rather than after the run
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(
            f"--scorecard={path}: cannot create {parent} ({exc.strerror})"
        ) from None
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise pytest.UsageError(f"--scorecard={path}: not writable")


def pytest_report_header(config: pytest.Config) -> str | None:
    if not is_rehearsal_run(config):
        return None
    name, source = resolve_env_name(config)
    if name == "local":
        return (
            f"nexus rehearsal: env=local ({source}) — EMULATOR: the built-in provider emulator "
            "answers on 127.0.0.1; no real provider is called"
        )
    return f"nexus rehearsal: env={name} ({source}) — real providers"


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
