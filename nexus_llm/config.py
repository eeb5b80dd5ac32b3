"""Settings from the environment, validated once, with one clear line per mistake.

The seed's variable names are the interface. Every parser here raises `ConfigError` naming the
variable, the value and what is allowed; the CLI turns that into exit code 2, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, TypeVar

import httpx

from .errors import ConfigError
from .http_shared import mask_userinfo

PROVIDER_NAMES: Final = ("gemini", "openai", "anthropic", "glm")
NOTIFY_CHANNELS: Final = ("slack", "teams")


class Secret:
    """A value that must never be printed: its repr and str are masked.

    Deliberately not a dataclass, so `dataclasses.asdict(settings)` cannot look inside.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Where and how to reach one provider."""

    name: str
    api_key: Secret | None
    base_url: str
    model: str
    timeout_s: float

    @property
    def configured(self) -> bool:
        return bool(self.api_key)


# Each provider's variables: key names (first set wins), base URL, model, and their defaults.
@dataclass(frozen=True, slots=True)
class _ProviderVars:
    keys: tuple[str, ...]
    base_url: str
    model: str
    default_base_url: str
    default_model: str


_DEFAULT_LEDGER = Path("logs/llm_cost_ledger.jsonl")
_DEFAULT_AUDIT = Path("logs/llm_audit.jsonl")

_PROVIDER_VARS: Final[Mapping[str, _ProviderVars]] = {
    "gemini": _ProviderVars(
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        "GEMINI_BASE_URL",
        "GEMINI_MODEL",
        "https://generativelanguage.googleapis.com",
        "gemini-2.5-flash",
    ),
    "openai": _ProviderVars(
        ("OPENAI_API_KEY",),
        "OPENAI_BASE_URL",
        "OPENAI_MODEL",
        "https://api.openai.com/v1",
        "gpt-4o-mini",
    ),
    "anthropic": _ProviderVars(
        ("ANTHROPIC_API_KEY",),
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_MODEL",
        "https://api.anthropic.com",
        "claude-haiku-4-5",
    ),
    "glm": _ProviderVars(
        ("GLM_API_KEY", "ZHIPUAI_API_KEY"),
        "GLM_BASE_URL",
        "GLM_MODEL",
        "https://open.bigmodel.cn/api/paas/v4",
        # A priced default: the free glm-4-flash cannot pass the seed's "cost > 0" check.
        "glm-4.5",
    ),
}


@dataclass(frozen=True, slots=True)
class ProtectionSettings:
    """Retry, breaker, dedupe and state-store knobs (DESIGN §2, issue 4); see the README."""

    redis_url: Secret | None = None
    redis_timeout_s: float = 0.25
    state_path: Path | None = None  # None: llm_state.sqlite3 beside the audit log
    retry_max_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_delay_s: float = 20.0
    call_deadline_s: float = 60.0
    breaker_failure_threshold: int = 5
    breaker_failure_rate: float = 0.5
    breaker_min_calls: int = 20
    breaker_window_s: float = 60.0
    breaker_cooldown_s: float = 30.0
    breaker_half_open_probes: int = 1
    dedupe_enabled: bool = True
    dedupe_ttl_s: float = 300.0
    dedupe_wait_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Nexus reads from the environment. Build with `Settings.from_env()`."""

    env: str = "default"
    cost_ledger_path: Path = _DEFAULT_LEDGER
    audit_log_path: Path = _DEFAULT_AUDIT
    slack_webhook_url: Secret | None = None
    teams_webhook_url: Secret | None = None
    notify_prefer: str = "slack"
    notify_timeout_s: float = 10.0  # per webhook request
    default_team: str = "default"
    default_project: str = "nexus"
    anomaly_window_min: int = 15
    anomaly_cost_usd_rate_threshold: float = 2.0  # USD per hour, measured over the window
    anomaly_429_burst_threshold: int = 20
    anomaly_breaker_open_min: float = 5.0
    anomaly_repeat_interval_min: float = 240.0  # a still-firing alert is repeated this often
    provider_order: tuple[str, ...] = PROVIDER_NAMES
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    timeout_s: float = 30.0
    log_prompts: bool = False
    prices_path: Path | None = None
    protection: ProtectionSettings = field(default_factory=lambda: ProtectionSettings())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; raises `ConfigError` on the first bad value."""
        # Wrapped so that no traceback or debugger can print the keys it holds.
        src = _SafeEnviron(os.environ if environ is None else environ)
        timeout_s = _parse(src, "LLM_TIMEOUT_S", 30.0, _positive_float, "a number of seconds > 0")
        providers = {name: _provider_settings(src, name, timeout_s) for name in PROVIDER_NAMES}
        return cls(
            env=_parse(
                src, "NEXUS_ENV", "default", _label, "a short name such as local|staging|prod"
            ),
            cost_ledger_path=_parse(
                src, "LLM_COST_LEDGER_PATH", _DEFAULT_LEDGER, _path, "a file path"
            ),
            audit_log_path=_parse(src, "LLM_AUDIT_LOG_PATH", _DEFAULT_AUDIT, _path, "a file path"),
            slack_webhook_url=_webhook(src, "SLACK_WEBHOOK_URL"),
            teams_webhook_url=_webhook(src, "TEAMS_WEBHOOK_URL"),
            notify_prefer=_parse(
                src, "NOTIFY_PREFER", "slack", _choice(NOTIFY_CHANNELS), "slack|teams"
            ),
            notify_timeout_s=_parse(
                src, "NOTIFY_TIMEOUT_S", 10.0, _positive_float, "a number of seconds > 0"
            ),
            default_team=_parse(src, "LLM_DEFAULT_TEAM", "default", _label, _LABEL_RULE),
            default_project=_parse(src, "LLM_DEFAULT_PROJECT", "nexus", _label, _LABEL_RULE),
            anomaly_window_min=_parse(
                src,
                "ANOMALY_WINDOW_MIN",
                15,
                window_minutes,
                f"a whole number of minutes from 1 to {MAX_WINDOW_MIN}",
            ),
            anomaly_cost_usd_rate_threshold=_parse(
                src,
                "ANOMALY_COST_USD_RATE_THRESHOLD",
                2.0,
                _non_negative_float,
                "a cost rate in USD per hour >= 0",
            ),
            anomaly_429_burst_threshold=_parse(
                src,
                "ANOMALY_429_BURST_THRESHOLD",
                20,
                _positive_int,
                "a whole number of responses > 0",
            ),
            anomaly_breaker_open_min=_parse(
                src, "ANOMALY_BREAKER_OPEN_MIN", 5.0, _positive_float, "a number of minutes > 0"
            ),
            anomaly_repeat_interval_min=_parse(
                src,
                "ANOMALY_REPEAT_INTERVAL_MIN",
                240.0,
                _positive_float,
                "a number of minutes > 0",
            ),
            provider_order=_parse(
                src,
                "LLM_PROVIDER_ORDER",
                PROVIDER_NAMES,
                _provider_order,
                "a comma-separated list of distinct providers from " + ", ".join(PROVIDER_NAMES),
            ),
            providers=providers,
            timeout_s=timeout_s,
            log_prompts=_parse(src, "LLM_LOG_PROMPTS", False, _bool, "true|false|1|0|yes|no"),
            prices_path=_parse(src, "LLM_PRICES_PATH", None, _path, "a path to a JSON price table"),
            protection=_protection_settings(src),
        )

    @property
    def state_path(self) -> Path:
        """The SQLite state file: `LLM_STATE_PATH`, else beside the audit log."""
        return self.protection.state_path or self.audit_log_path.parent / "llm_state.sqlite3"

    def configured_providers(self) -> list[ProviderSettings]:
        """Providers in `provider_order` that have a key, in that order."""
        return [self.providers[n] for n in self.provider_order if self.providers[n].configured]

    def with_provider(self, name: str, **changes: object) -> Settings:
        """A copy with one provider's settings changed (used to point at the emulator)."""
        updated = dict(self.providers)
        updated[name] = replace(self.providers[name], **changes)  # type: ignore[arg-type]
        return replace(self, providers=updated)

    def replace(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


class _SafeEnviron(Mapping[str, str]):
    """A read-only view of the environment whose repr never shows a value."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<environment: {len(self._data)} variables, values hidden>"


_T = TypeVar("_T")
_LABEL_RULE = "1-64 characters of letters, digits, '.', '_', '-' or '/'"


def _parse(
    src: Mapping[str, str],
    name: str,
    default: _T,
    convert: Callable[[str], _T],
    allowed: str,
    *,
    shown: Callable[[str], str] = str,
) -> _T:
    """`convert` the variable's value, or `default` when unset; `shown` is how a refused
    value appears in the error (URLs lose their credentials)."""
    raw = src.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return convert(raw.strip())
    except ValueError:
        raise ConfigError(name, shown(raw), allowed) from None


def _provider_settings(src: Mapping[str, str], name: str, timeout_s: float) -> ProviderSettings:
    names = _PROVIDER_VARS[name]
    found = next(((k, src[k].strip()) for k in names.keys if src.get(k, "").strip()), None)
    key = None
    if found is not None:
        variable, key = found
        # Header values must be printable ASCII; a pasted key with a stray character would
        # otherwise fail deep inside the HTTP client on every call.
        if not all(0x21 <= ord(c) <= 0x7E for c in key):
            raise ConfigError(variable, "<redacted>", "printable ASCII characters without spaces")
    return ProviderSettings(
        name=name,
        api_key=Secret(key) if key else None,
        base_url=_parse(
            src,
            names.base_url,
            names.default_base_url,
            _http_url,
            "an http(s):// URL with a port in 1-65535",
            shown=mask_userinfo,
        ),
        model=_parse(
            src,
            names.model,
            names.default_model,
            _model_id,
            "a model id such as " + names.default_model,
        ),
        timeout_s=timeout_s,
    )


def _protection_settings(src: Mapping[str, str]) -> ProtectionSettings:
    d = ProtectionSettings()
    seconds, positive = "a number of seconds > 0", "a whole number > 0"
    redis = src.get("REDIS_URL", "").strip()
    if redis and not redis.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL", "<redacted>", "a redis://, rediss:// or unix:// URL")
    return ProtectionSettings(
        redis_url=Secret(redis) if redis else None,
        redis_timeout_s=_parse(src, "REDIS_TIMEOUT_S", d.redis_timeout_s, _positive_float, seconds),
        state_path=_parse(src, "LLM_STATE_PATH", None, _path, "a file path"),
        retry_max_attempts=_parse(
            src, "LLM_RETRY_MAX_ATTEMPTS", d.retry_max_attempts, _positive_int, positive
        ),
        retry_base_s=_parse(src, "LLM_RETRY_BASE_S", d.retry_base_s, _positive_float, seconds),
        retry_max_delay_s=_parse(
            src, "LLM_RETRY_MAX_DELAY_S", d.retry_max_delay_s, _positive_float, seconds
        ),
        call_deadline_s=_parse(
            src, "LLM_CALL_DEADLINE_S", d.call_deadline_s, _positive_float, seconds
        ),
        breaker_failure_threshold=_parse(
            src,
            "LLM_BREAKER_FAILURE_THRESHOLD",
            d.breaker_failure_threshold,
            _positive_int,
            positive,
        ),
        breaker_failure_rate=_parse(
            src,
            "LLM_BREAKER_FAILURE_RATE",
            d.breaker_failure_rate,
            _fraction,
            "a fraction between 0 (exclusive) and 1",
        ),
        breaker_min_calls=_parse(
            src, "LLM_BREAKER_MIN_CALLS", d.breaker_min_calls, _positive_int, positive
        ),
        breaker_window_s=_parse(
            src, "LLM_BREAKER_WINDOW_S", d.breaker_window_s, _positive_float, seconds
        ),
        breaker_cooldown_s=_parse(
            src, "LLM_BREAKER_COOLDOWN_S", d.breaker_cooldown_s, _positive_float, seconds
        ),
        breaker_half_open_probes=_parse(
            src,
            "LLM_BREAKER_HALF_OPEN_PROBES",
            d.breaker_half_open_probes,
            _positive_int,
            positive,
        ),
        dedupe_enabled=_parse(src, "LLM_DEDUPE", d.dedupe_enabled, _bool, "true|false"),
        dedupe_ttl_s=_parse(
            src,
            "LLM_DEDUPE_TTL_S",
            d.dedupe_ttl_s,
            _non_negative_float,
            "a number of seconds >= 0 (0 turns dedupe off)",
        ),
        dedupe_wait_s=_parse(src, "LLM_DEDUPE_WAIT_S", d.dedupe_wait_s, _positive_float, seconds),
    )


def _fraction(raw: str) -> float:
    value = _positive_float(raw)
    if value > 1:
        raise ValueError(raw)
    return value


def _webhook(src: Mapping[str, str], name: str) -> Secret | None:
    raw = src.get(name, "").strip()
    if not raw:
        return None
    # The value is a secret: name the problem without echoing it.
    allowed = "an https:// webhook URL (http:// only on 127.0.0.1 or localhost)"
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL:
        raise ConfigError(name, "<redacted>", allowed) from None
    loopback = url.host in ("127.0.0.1", "localhost", "::1")
    if not url.host or not (url.scheme == "https" or (url.scheme == "http" and loopback)):
        raise ConfigError(name, "<redacted>", allowed)
    return Secret(raw)


def label_is_valid(value: str) -> bool:
    """Whether a tag value (team, project, purpose) is acceptable as a metric label."""
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "._-/") for c in value)


def _label(raw: str) -> str:
    if not label_is_valid(raw):
        raise ValueError(raw)
    return raw


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        value = raw.lower()
        if value not in options:
            raise ValueError(raw)
        return value

    return convert


def _positive_int(raw: str) -> int:
    if not raw.isascii():  # int() would take other scripts' digits
        raise ValueError(raw)
    value = int(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


MAX_WINDOW_MIN: Final = 10080  # a week: the anomaly checkpoint keeps a bucket per minute


def window_minutes(raw: str) -> int:
    value = _positive_int(raw)
    if value > MAX_WINDOW_MIN:
        raise ValueError(raw)
    return value


def _positive_float(raw: str) -> float:
    if not raw.isascii():
        raise ValueError(raw)
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError(raw)
    return value


def _non_negative_float(raw: str) -> float:
    if not raw.isascii():
        raise ValueError(raw)
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError(raw)
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _path(raw: str) -> Path:
    if "\x00" in raw:
        raise ValueError(raw)
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # "~someone" whose home cannot be found
        raise ValueError(raw) from None


def _http_url(raw: str) -> str:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError(raw)
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL:
        raise ValueError(raw) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(raw)
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(raw)  # httpx takes any number; every sender would fail on each call
    return raw.rstrip("/")


def _model_id(raw: str) -> str:
    if not all(c.isalnum() or c in "._-:/@" for c in raw) or len(raw) > 128:
        raise ValueError(raw)
    return raw


def _provider_order(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip().lower() for part in raw.split(","))
    if not names or any(n not in PROVIDER_NAMES for n in names) or len(set(names)) != len(names):
        raise ValueError(raw)
    return names
