"""Helpers for the SDK conformance tests: import an official SDK or skip, and our own reading.

The official SDKs live in the optional ``conformance`` extra. On a developer's machine a missing
SDK skips its module; in CI (``CI=true``) it fails, so a pipeline cannot pass without running them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.types import Usage

# "Summarise : the disk is full ." → 7 prompt tokens under the emulator's counting rule; the
# emulated reply "Emulated <provider> reply to 7 prompt tokens." counts 8.
PROMPT = "Summarise: the disk is full."
PROMPT_TOKENS = 7
REPLY_TOKENS = 8
# Knobs set with Emulator.configure so that cached and reasoning usage are not zero.
CACHED_TOKENS = 2
THOUGHTS_TOKENS = 20
# The retry hint injected with every rate_limit fault, in seconds.
RETRY_AFTER_S = 7
# Short enough that a hung emulator fails a test fast, long enough for a loaded CI machine.
TIMEOUT_S = 5.0

_PREFIX = {"gemini": "GEMINI", "openai": "OPENAI", "anthropic": "ANTHROPIC", "glm": "GLM"}


def require_sdk(module: str, *, distribution: str) -> ModuleType:
    """Import `module`: without it the calling test module is skipped — or failed when CI is "true".

    Call it at module level; `distribution` names what `pip install` would fetch.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = (
            f"`{module}` is not importable ({exc}); install `{distribution}` "
            "(pip install -e '.[conformance]') to run the SDK conformance tests"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: install it instead of skipping)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def expected_text(provider: str) -> str:
    """The text the emulator answers every prompt of PROMPT_TOKENS tokens with."""
    return f"Emulated {provider} reply to {PROMPT_TOKENS} prompt tokens."


def configure_usage(emulator: Emulator, provider: str) -> None:
    """Make the emulator report cached and reasoning tokens for `provider`."""
    emulator.configure(provider, thoughts_tokens=THOUGHTS_TOKENS, cached_tokens=CACHED_TOKENS)


def our_usage(emulator: Emulator, tmp_path: Path, provider: str) -> Usage:
    """The usage our own adapter parses from one unary call to the emulated `provider`."""
    prefix = _PREFIX[provider]
    settings = Settings.from_env(
        {
            f"{prefix}_API_KEY": emulator.key_for(provider),
            f"{prefix}_BASE_URL": emulator.base_url_for(provider),
            "LLM_PROVIDER_ORDER": provider,
            "LLM_AUDIT_LOG_PATH": str(tmp_path / "logs" / "audit.jsonl"),
            "LLM_COST_LEDGER_PATH": str(tmp_path / "logs" / "ledger.jsonl"),
            "NEXUS_ENV": "test",
            "LLM_DEDUPE": "false",
            "LLM_RETRY_MAX_ATTEMPTS": "1",
        }
    )
    with Client(settings) as client:
        reply = client.generate(PROMPT, purpose="conformance", team="sre")
    assert reply.text == expected_text(provider)
    return reply.usage
