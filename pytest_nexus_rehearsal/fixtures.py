"""The plugin's fixtures: a public testing surface for rehearsal checks.

Nothing starts until a test asks: the emulator and the log directory come up the first time a
test requests `nexus_env` (or a fixture built on it), once per session — once per worker under
xdist — and go down at the end of the session.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .options import resolve_env_name, scorecard_path

if TYPE_CHECKING:
    from nexus_llm import Client
    from nexus_llm.emulator import Emulator
    from nexus_llm.observe.query import JsonlView

    from .environments import NexusEnvironment
    from .sink import WebhookSink

EVIDENCE_KEY = "nexus_evidence"


@pytest.fixture(scope="session")
def nexus_env(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NexusEnvironment]:
    """The environment under rehearsal (`--nexus-env`): settings, and the emulator when local."""
    from nexus_llm.errors import ConfigError

    from .environments import LOCAL, open_environment

    name, source = resolve_env_name(pytestconfig)
    log_dir = _local_log_dir(pytestconfig, tmp_path_factory) if name == LOCAL else None
    with contextlib.ExitStack() as stack:
        try:
            env = stack.enter_context(
                open_environment(name, log_dir=log_dir, root=pytestconfig.rootpath)
            )
        except ConfigError as exc:
            # One line, no traceback: a traceback would print the frames' arguments.
            pytest.fail(f"nexus rehearsal ({source}): {exc}", pytrace=False)
        yield env


def _local_log_dir(config: pytest.Config, factory: pytest.TempPathFactory) -> Path:
    """Where `local` writes its logs: beside the scorecard when there is one (the evidence
    outlives pytest's temporary directories), else a temporary directory."""
    scorecard = scorecard_path(config)
    if scorecard is None:
        return factory.mktemp("nexus-logs")
    worker = str(getattr(config, "workerinput", {}).get("workerid", "main"))
    log_dir = scorecard.parent / f"{scorecard.stem}-logs" / worker
    shutil.rmtree(log_dir, ignore_errors=True)  # this run's evidence only
    log_dir.mkdir(parents=True)
    return log_dir


@pytest.fixture(scope="session")
def llm_client(nexus_env: NexusEnvironment) -> Iterator[Client]:
    """A live `nexus_llm.Client` for the environment, writing to its audit log and ledger."""
    from nexus_llm import Client

    with Client(nexus_env.settings) as client:
        yield client


@pytest.fixture
def audit_log(nexus_env: NexusEnvironment) -> JsonlView:
    """The audit log as a reader: `.events(name)`, `.since(ts)`, `.where(**fields)`."""
    from nexus_llm.observe.query import JsonlView

    return JsonlView(nexus_env.settings.audit_log_path)


@pytest.fixture
def cost_ledger(nexus_env: NexusEnvironment) -> JsonlView:
    """The cost ledger as a reader: `.where(team=..., project=...)`, `.for_request(id)`."""
    from nexus_llm.observe.query import JsonlView

    return JsonlView(nexus_env.settings.cost_ledger_path)


@pytest.fixture
def nexus_emulator(nexus_env: NexusEnvironment) -> Iterator[Emulator]:
    """The provider emulator of the `local` environment; faults are cleared after each test."""
    if nexus_env.emulator is None:
        pytest.skip(f"needs the local emulator; --nexus-env is {nexus_env.name!r}")
    yield nexus_env.emulator
    nexus_env.emulator.clear_faults()


@pytest.fixture(scope="session")
def webhook_sink_server() -> Iterator[WebhookSink]:
    """One Slack/Teams webhook sink on 127.0.0.1 for the session (per xdist worker)."""
    from .sink import WebhookSink

    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def webhook_sink(webhook_sink_server: WebhookSink) -> Iterator[WebhookSink]:
    """A local webhook sink that answers like Slack and Teams: `.slack_url`, `.teams_url`,
    `.received()`, `.fail(channel, mode)`; records and faults are cleared around each test."""
    webhook_sink_server.reset()
    yield webhook_sink_server
    webhook_sink_server.reset()


class ScorecardRow:
    """Records a check's evidence for its scorecard row (carried to the controller by xdist)."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def record(self, *, measured: str, evidence: str, threshold: str = "", hint: str = "") -> None:
        self._node.user_properties.append(
            (
                EVIDENCE_KEY,
                {"measured": measured, "threshold": threshold, "evidence": evidence, "hint": hint},
            )
        )


@pytest.fixture
def scorecard_row(request: pytest.FixtureRequest) -> ScorecardRow:
    """Record measured value, threshold and evidence; a passing check without them is
    INCONCLUSIVE on the scorecard."""
    assert isinstance(request.node, pytest.Item)
    return ScorecardRow(request.node)
