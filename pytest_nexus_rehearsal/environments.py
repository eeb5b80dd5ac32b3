"""Where a rehearsal runs: the built-in `local` environment, or a named profile.

`local` starts the provider emulator on 127.0.0.1 and points Gemini at it with the emulator's
key; every real provider key in the process environment is dropped, so a local run can never
spend money. Other names (`staging`, `prod`, ...) read their non-secret settings from a profile
(`nexus.toml`, or `[tool.nexus]` in `pyproject.toml`) under `[environments.NAME]`, and the process
environment on top; secrets come only from the process environment.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nexus_llm.config import PROVIDER_NAMES, Secret, Settings, label_is_valid
from nexus_llm.errors import ConfigError

if TYPE_CHECKING:
    from nexus_llm.emulator import Emulator

LOCAL = "local"
_SECRET_SUFFIXES = ("_API_KEY", "_WEBHOOK_URL", "REDIS_URL")


@dataclass(frozen=True, slots=True)
class NexusEnvironment:
    """A resolved environment: its name, its settings, and the emulator when it is `local`."""

    name: str
    settings: Settings
    emulator: Emulator | None = None
    profile_source: str | None = None

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None

    def describe(self) -> str:
        if self.is_emulator:
            return (
                f"{self.name} — EMULATOR: answers come from the built-in provider emulator, "
                "not a real provider"
            )
        source = f" (profile: {self.profile_source})" if self.profile_source else ""
        return f"{self.name} — real providers{source}"

    def provider_names(self) -> list[str]:
        return [p.name for p in self.settings.configured_providers()]


def check_env_name(name: str, *, source: str = "--env") -> str:
    if not label_is_valid(name):
        raise ConfigError(source, name, "an environment name such as local, staging or prod")
    return name


def load_profile(name: str, root: Path) -> tuple[dict[str, str], str | None]:
    """The `[environments.NAME]` table from nexus.toml or pyproject's [tool.nexus], if any.

    When a profile file defines environments but not this one, the name is a typo or a missing
    profile: that is an error, never a silent run against whatever the process has.
    """
    defined: list[str] = []
    for path, prefix in ((root / "nexus.toml", ()), (root / "pyproject.toml", ("tool", "nexus"))):
        if not path.is_file():
            continue
        try:
            data: object = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(path), None, f"a readable TOML file ({exc})") from None
        for key in (*prefix, "environments"):
            data = data.get(key) if isinstance(data, dict) else None
        if not isinstance(data, dict):
            continue
        defined.extend(str(k) for k in data)
        if name not in data:
            continue
        where = f"{path.name} [{'.'.join((*prefix, 'environments', name))}]"
        return _profile_values(data[name], where), where
    if defined and name != LOCAL:
        raise ConfigError(
            "environment", name, "one of the profiles defined here: " + ", ".join(sorted(defined))
        )
    return {}, None


def _profile_values(table: object, where: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(where, None, "a table of VARIABLE = value pairs")
    values: dict[str, str] = {}
    for key, value in table.items():
        if key.upper().endswith(_SECRET_SUFFIXES):
            raise ConfigError(
                f"{where} {key}", "<redacted>", "no secrets in profiles: set it in the environment"
            )
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{where} {key}", repr(value)[:40], "a string, number or boolean")
        values[key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def configured_settings(
    name: str,
    *,
    source: str = "--env",
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> Settings:
    """The validated settings of an environment, without starting anything."""
    check_env_name(name, source=source)
    base = dict(os.environ if environ is None else environ)
    profile, _where = load_profile(name, root or Path.cwd())
    return Settings.from_env({**profile, **base, "NEXUS_ENV": name})


def usable_providers(settings: Settings) -> list[str]:
    """Providers that have a key and an adapter in this version, in order."""
    from nexus_llm.providers import supported_providers

    supported = supported_providers()
    return [p.name for p in settings.configured_providers() if p.name in supported]


@contextmanager
def open_environment(
    name: str,
    *,
    environ: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    root: Path | None = None,
    emulate: bool = True,
) -> Iterator[NexusEnvironment]:
    """Resolve an environment; for `local`, run the emulator for the life of the block.

    Args:
        environ: the process environment (defaults to `os.environ`).
        log_dir: where the audit log and ledger go; None keeps the configured paths.
        root: where to look for a profile file (defaults to the current directory).
        emulate: False keeps even `local` on real providers (a label only).
    """
    settings = _with_logs(configured_settings(name, environ=environ, root=root), log_dir)
    if name == LOCAL and emulate:
        from nexus_llm.emulator import Emulator

        with Emulator() as emulator:
            yield NexusEnvironment(LOCAL, _point_at_emulator(settings, emulator), emulator)
        return
    _profile, source = load_profile(name, root or Path.cwd())
    yield NexusEnvironment(name, settings, None, source)


def _with_logs(settings: Settings, log_dir: Path | None) -> Settings:
    if log_dir is None:
        return settings
    return settings.replace(
        audit_log_path=log_dir / "llm_audit.jsonl",
        cost_ledger_path=log_dir / "llm_cost_ledger.jsonl",
    )


def _point_at_emulator(settings: Settings, emulator: Emulator) -> Settings:
    """Every provider the emulator speaks goes to it, with its key; real keys are dropped."""
    from nexus_llm.providers import supported_providers

    for provider in PROVIDER_NAMES:
        settings = settings.with_provider(provider, api_key=None)
    emulated = [p for p in supported_providers() if p in emulator.providers]
    for provider in emulated:
        settings = settings.with_provider(
            provider,
            api_key=Secret(emulator.key_for(provider)),
            base_url=emulator.base_url_for(provider),
        )
    order = [p for p in settings.provider_order if p in emulated]
    return settings.replace(provider_order=tuple(order or emulated))
