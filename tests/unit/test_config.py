"""Settings from the environment: defaults, every variable, and one-line errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_llm.config import PROVIDER_NAMES, Secret, Settings
from nexus_llm.errors import ConfigError

FAKE_KEY = "AIzaFAKE-gemini-key-0123456789"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/SECRETslackTOKEN"
TEAMS_URL = "https://contoso.webhook.office.com/webhookb2/SECRETteamsTOKEN"


def _error(environ: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    return caught.value


class TestDefaults:
    """An empty environment gives the documented defaults."""

    def test_seed_variable_defaults(self) -> None:
        """Every seed variable has its documented default when unset."""
        s = Settings.from_env({})
        assert s.cost_ledger_path == Path("logs/llm_cost_ledger.jsonl")
        assert s.audit_log_path == Path("logs/llm_audit.jsonl")
        assert s.slack_webhook_url is None
        assert s.teams_webhook_url is None
        assert s.notify_prefer == "slack"
        assert s.default_team == "default"
        assert s.default_project == "nexus"
        assert s.anomaly_window_min == 15
        assert s.anomaly_cost_usd_rate_threshold == 2.0
        assert s.anomaly_429_burst_threshold == 20
        assert s.anomaly_breaker_open_min == 5.0

    def test_client_defaults(self) -> None:
        """Provider order, timeout, prompt logging and env default sensibly."""
        s = Settings.from_env({})
        assert s.provider_order == PROVIDER_NAMES
        assert s.provider_order[0] == "gemini"
        assert s.timeout_s == 30.0
        assert s.log_prompts is False
        assert s.env == "default"
        assert s.prices_path is None

    def test_provider_defaults(self) -> None:
        """Each provider has a default base URL and model, no key, and the global timeout."""
        s = Settings.from_env({})
        gemini = s.providers["gemini"]
        assert gemini.base_url == "https://generativelanguage.googleapis.com"
        assert gemini.model == "gemini-2.5-flash"
        assert set(s.providers) == set(PROVIDER_NAMES)
        for p in s.providers.values():
            assert p.api_key is None
            assert not p.configured
            assert p.timeout_s == 30.0
            assert p.base_url.startswith("https://")
        assert s.configured_providers() == []

    def test_blank_values_count_as_unset(self) -> None:
        """A variable set to whitespace falls back to its default instead of failing."""
        s = Settings.from_env(
            {"ANOMALY_WINDOW_MIN": "  ", "NOTIFY_PREFER": "", "GEMINI_MODEL": " "}
        )
        assert s.anomaly_window_min == 15
        assert s.notify_prefer == "slack"
        assert s.providers["gemini"].model == "gemini-2.5-flash"


class TestSeedVariables:
    """Each seed variable is read and converted."""

    def test_every_seed_variable_is_read(self) -> None:
        """Setting every seed variable changes every corresponding setting."""
        s = Settings.from_env(
            {
                "LLM_COST_LEDGER_PATH": "/var/nexus/ledger.jsonl",
                "LLM_AUDIT_LOG_PATH": "/var/nexus/audit.jsonl",
                "SLACK_WEBHOOK_URL": SLACK_URL,
                "TEAMS_WEBHOOK_URL": TEAMS_URL,
                "NOTIFY_PREFER": "teams",
                "LLM_DEFAULT_TEAM": "ops",
                "LLM_DEFAULT_PROJECT": "finops/reports",
                "ANOMALY_WINDOW_MIN": "30",
                "ANOMALY_COST_USD_RATE_THRESHOLD": "0.5",
                "ANOMALY_429_BURST_THRESHOLD": "7",
                "ANOMALY_BREAKER_OPEN_MIN": "2.5",
            }
        )
        assert s.cost_ledger_path == Path("/var/nexus/ledger.jsonl")
        assert s.audit_log_path == Path("/var/nexus/audit.jsonl")
        assert isinstance(s.slack_webhook_url, Secret)
        assert s.slack_webhook_url.reveal() == SLACK_URL
        assert isinstance(s.teams_webhook_url, Secret)
        assert s.teams_webhook_url.reveal() == TEAMS_URL
        assert s.notify_prefer == "teams"
        assert s.default_team == "ops"
        assert s.default_project == "finops/reports"
        assert s.anomaly_window_min == 30
        assert s.anomaly_cost_usd_rate_threshold == 0.5
        assert s.anomaly_429_burst_threshold == 7
        assert s.anomaly_breaker_open_min == 2.5

    def test_values_are_stripped_and_choices_case_insensitive(self) -> None:
        """Surrounding whitespace is ignored and NOTIFY_PREFER accepts any case."""
        s = Settings.from_env({"ANOMALY_WINDOW_MIN": " 12 ", "NOTIFY_PREFER": "TEAMS"})
        assert s.anomaly_window_min == 12
        assert s.notify_prefer == "teams"

    def test_zero_cost_threshold_is_allowed(self) -> None:
        """A cost-rate threshold of 0 USD/hour is valid (alert on any spend)."""
        assert (
            Settings.from_env(
                {"ANOMALY_COST_USD_RATE_THRESHOLD": "0"}
            ).anomaly_cost_usd_rate_threshold
            == 0.0
        )

    def test_home_in_paths_is_expanded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A leading ~ in a file path is expanded to the home directory."""
        monkeypatch.setenv("HOME", "/home/nexus")
        s = Settings.from_env({"LLM_AUDIT_LOG_PATH": "~/audit.jsonl"})
        assert s.audit_log_path == Path("/home/nexus/audit.jsonl")

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("prod", "prod"),
            ("staging", "staging"),
            ("local", "local"),
            ("eu-west.prod", "eu-west.prod"),
        ],
    )
    def test_nexus_env(self, raw: str, expected: str) -> None:
        """NEXUS_ENV is a short label naming the environment."""
        assert Settings.from_env({"NEXUS_ENV": raw}).env == expected

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("true", True),
            ("TRUE", True),
            ("1", True),
            ("yes", True),
            ("on", True),
            ("false", False),
            ("0", False),
            ("no", False),
            ("Off", False),
        ],
    )
    def test_log_prompts(self, raw: str, expected: bool) -> None:
        """LLM_LOG_PROMPTS accepts the usual spellings of true and false."""
        assert Settings.from_env({"LLM_LOG_PROMPTS": raw}).log_prompts is expected

    def test_timeout_reaches_every_provider(self) -> None:
        """LLM_TIMEOUT_S sets the global timeout and each provider's timeout."""
        s = Settings.from_env({"LLM_TIMEOUT_S": "2.5"})
        assert s.timeout_s == 2.5
        assert {p.timeout_s for p in s.providers.values()} == {2.5}


class TestProviderKeys:
    """Which key variable configures which provider."""

    def test_gemini_key_wins_over_google_key(self) -> None:
        """GEMINI_API_KEY takes precedence over GOOGLE_API_KEY when both are set."""
        s = Settings.from_env({"GEMINI_API_KEY": "gem-key", "GOOGLE_API_KEY": "goog-key"})
        key = s.providers["gemini"].api_key
        assert key is not None
        assert key.reveal() == "gem-key"

    def test_google_key_alone_configures_gemini(self) -> None:
        """GOOGLE_API_KEY configures Gemini when GEMINI_API_KEY is absent."""
        s = Settings.from_env({"GOOGLE_API_KEY": "goog-key"})
        key = s.providers["gemini"].api_key
        assert key is not None
        assert key.reveal() == "goog-key"
        assert s.providers["gemini"].configured

    def test_blank_gemini_key_falls_back_to_google_key(self) -> None:
        """A whitespace-only GEMINI_API_KEY does not hide a real GOOGLE_API_KEY."""
        s = Settings.from_env({"GEMINI_API_KEY": "  ", "GOOGLE_API_KEY": "goog-key"})
        key = s.providers["gemini"].api_key
        assert key is not None
        assert key.reveal() == "goog-key"

    def test_glm_key_wins_over_zhipuai_key(self) -> None:
        """GLM_API_KEY takes precedence over ZHIPUAI_API_KEY."""
        s = Settings.from_env({"GLM_API_KEY": "glm-key", "ZHIPUAI_API_KEY": "zhipu-key"})
        key = s.providers["glm"].api_key
        assert key is not None
        assert key.reveal() == "glm-key"

    def test_zhipuai_key_alone_configures_glm(self) -> None:
        """ZHIPUAI_API_KEY configures GLM when GLM_API_KEY is absent."""
        s = Settings.from_env({"ZHIPUAI_API_KEY": "zhipu-key"})
        key = s.providers["glm"].api_key
        assert key is not None
        assert key.reveal() == "zhipu-key"

    @pytest.mark.parametrize(
        ("variable", "provider"),
        [("OPENAI_API_KEY", "openai"), ("ANTHROPIC_API_KEY", "anthropic")],
    )
    def test_single_key_providers(self, variable: str, provider: str) -> None:
        """OPENAI_API_KEY and ANTHROPIC_API_KEY configure their provider and no other."""
        s = Settings.from_env({variable: " sk-test "})
        key = s.providers[provider].api_key
        assert key is not None
        assert key.reveal() == "sk-test"
        assert [p.name for p in s.configured_providers()] == [provider]

    def test_configured_providers_follow_the_order(self) -> None:
        """configured_providers lists keyed providers in LLM_PROVIDER_ORDER order."""
        s = Settings.from_env(
            {
                "GEMINI_API_KEY": "g",
                "OPENAI_API_KEY": "o",
                "LLM_PROVIDER_ORDER": "openai,anthropic,gemini",
            }
        )
        assert [p.name for p in s.configured_providers()] == ["openai", "gemini"]


class TestProviderEndpoints:
    """*_BASE_URL and *_MODEL per provider."""

    @pytest.mark.parametrize("provider", PROVIDER_NAMES)
    def test_base_url_and_model_override(self, provider: str) -> None:
        """Each provider's base URL (trailing slash dropped) and model come from its variables."""
        prefix = provider.upper()
        s = Settings.from_env(
            {
                f"{prefix}_BASE_URL": "http://127.0.0.1:8099/",
                f"{prefix}_MODEL": "some-model-1.0",
            }
        )
        assert s.providers[provider].base_url == "http://127.0.0.1:8099"
        assert s.providers[provider].model == "some-model-1.0"

    def test_provider_order_is_normalised(self) -> None:
        """LLM_PROVIDER_ORDER is split on commas, stripped and lower-cased."""
        s = Settings.from_env({"LLM_PROVIDER_ORDER": " Gemini , GLM "})
        assert s.provider_order == ("gemini", "glm")


BAD_VALUES: list[tuple[str, str, str]] = [
    # (variable, bad value, a word the "allowed" part must contain)
    ("ANOMALY_WINDOW_MIN", "0", "minutes"),
    ("ANOMALY_WINDOW_MIN", "-5", "minutes"),
    ("ANOMALY_WINDOW_MIN", "1.5", "minutes"),
    ("ANOMALY_WINDOW_MIN", "fifteen", "minutes"),
    ("ANOMALY_WINDOW_MIN", "1e3", "minutes"),
    ("ANOMALY_COST_USD_RATE_THRESHOLD", "-0.01", "USD per hour"),
    ("ANOMALY_COST_USD_RATE_THRESHOLD", "nan", "USD per hour"),
    ("ANOMALY_COST_USD_RATE_THRESHOLD", "inf", "USD per hour"),
    ("ANOMALY_COST_USD_RATE_THRESHOLD", "$2", "USD per hour"),
    ("ANOMALY_429_BURST_THRESHOLD", "0", "> 0"),
    ("ANOMALY_429_BURST_THRESHOLD", "many", "> 0"),
    ("ANOMALY_429_BURST_THRESHOLD", "2.0", "> 0"),
    ("ANOMALY_BREAKER_OPEN_MIN", "0", "minutes"),
    ("ANOMALY_BREAKER_OPEN_MIN", "-1", "minutes"),
    ("ANOMALY_BREAKER_OPEN_MIN", "5m", "minutes"),
    ("ANOMALY_BREAKER_OPEN_MIN", "inf", "minutes"),
    ("NOTIFY_PREFER", "email", "slack|teams"),
    ("NOTIFY_PREFER", "slack,teams", "slack|teams"),
    ("LLM_DEFAULT_TEAM", "team with spaces", "characters"),
    ("LLM_DEFAULT_TEAM", "x" * 65, "characters"),
    ("LLM_DEFAULT_TEAM", "ops;drop", "characters"),
    ("LLM_DEFAULT_PROJECT", "proj\tx", "characters"),
    ("LLM_DEFAULT_PROJECT", "a,b", "characters"),
    ("LLM_COST_LEDGER_PATH", "logs/\x00ledger.jsonl", "path"),
    ("LLM_AUDIT_LOG_PATH", "\x00", "path"),
    ("LLM_AUDIT_LOG_PATH", "~nexus-no-such-user-7f3c/audit.jsonl", "path"),
    ("LLM_COST_LEDGER_PATH", "~nexus-no-such-user-7f3c/ledger.jsonl", "path"),
    ("LLM_PRICES_PATH", "~nexus-no-such-user-7f3c/prices.json", "path"),
    ("LLM_TIMEOUT_S", "0", "seconds"),
    ("LLM_TIMEOUT_S", "-3", "seconds"),
    ("LLM_TIMEOUT_S", "thirty", "seconds"),
    ("LLM_TIMEOUT_S", "nan", "seconds"),
    ("LLM_LOG_PROMPTS", "maybe", "true|false"),
    ("LLM_LOG_PROMPTS", "2", "true|false"),
    ("NEXUS_ENV", "prod env", "local|staging|prod"),
    ("NEXUS_ENV", "prod\nstaging", "local|staging|prod"),
    ("LLM_PROVIDER_ORDER", "gemini,mistral", "gemini"),
    ("LLM_PROVIDER_ORDER", "gemini,gemini", "distinct"),
    ("LLM_PROVIDER_ORDER", "gemini,,openai", "gemini"),
    ("LLM_PROVIDER_ORDER", "gemini,", "gemini"),
    ("LLM_PROVIDER_ORDER", "openai;gemini", "gemini"),
    ("GEMINI_BASE_URL", "generativelanguage.googleapis.com", "http"),
    ("GEMINI_BASE_URL", "ftp://example.com", "http"),
    ("GEMINI_BASE_URL", "https://exa mple.com", "http"),
    ("GEMINI_BASE_URL", "https://exa\tmple.com", "http"),
    ("GEMINI_BASE_URL", "https://host:notaport", "http"),
    ("OPENAI_BASE_URL", "https://api.openai.com/v1\x7f", "http"),
    ("OPENAI_BASE_URL", "http://", "http"),
    ("ANTHROPIC_BASE_URL", "localhost:8080", "http"),
    ("GLM_BASE_URL", "open.bigmodel.cn", "http"),
    ("GEMINI_MODEL", "gemini 2.5", "model id"),
    ("GEMINI_MODEL", "gemini?x=1", "model id"),
    ("OPENAI_MODEL", "m" * 129, "model id"),
    ("ANTHROPIC_MODEL", "claude#1", "model id"),
    ("GLM_MODEL", "glm-4/../../x y", "model id"),
]


class TestInvalidValues:
    """A bad value is a one-line ConfigError naming the variable, the value and what is allowed."""

    @pytest.mark.parametrize(("variable", "value", "allowed_word"), BAD_VALUES)
    def test_bad_value_is_one_clear_line(
        self, variable: str, value: str, allowed_word: str
    ) -> None:
        """The error names the variable, shows the value and says what would be accepted."""
        error = _error({variable: value})
        message = str(error)
        assert "\n" not in message
        assert message.startswith(f"{variable}=")
        assert repr(value.strip()) in message or repr(value) in message
        assert allowed_word in message
        assert error.variable == variable
        assert error.allowed in message

    def test_bad_value_error_carries_no_traceback_chain(self) -> None:
        """The ConfigError hides the internal conversion error (raised `from None`)."""
        error = _error({"ANOMALY_WINDOW_MIN": "x"})
        assert error.__cause__ is None
        assert error.__suppress_context__ is True

    def test_provider_order_lists_the_allowed_names(self) -> None:
        """An unknown provider name gets a message listing every known provider."""
        message = str(_error({"LLM_PROVIDER_ORDER": "gemini,bard"}))
        for name in PROVIDER_NAMES:
            assert name in message
        assert "'gemini,bard'" in message


class TestSecrets:
    """Keys and webhook URLs never show up in reprs or error messages."""

    @pytest.mark.parametrize("variable", ["SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK_URL"])
    @pytest.mark.parametrize(
        "value",
        [
            "hooks.slack.com/services/T000/B000/SECRETtoken",
            "ftp://hooks.example.com/SECRETtoken",
            "SECRETtoken",
            "javascript:alert('SECRETtoken')",
        ],
    )
    def test_bad_webhook_is_not_echoed(self, variable: str, value: str) -> None:
        """A malformed webhook is rejected without the value appearing in the error."""
        error = _error({variable: value})
        message = str(error)
        assert variable in message
        assert "SECRETtoken" not in message
        assert "SECRETtoken" not in repr(error)
        assert "SECRETtoken" not in str(error.value)
        assert "https://" in message
        assert "\n" not in message

    def test_secret_repr_and_str_are_masked(self) -> None:
        """A Secret's repr, str and format never reveal the value."""
        secret = Secret("super-secret-value")
        for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
            assert "super-secret-value" not in shown
        assert "***" in repr(secret)
        assert secret.reveal() == "super-secret-value"

    def test_empty_secret_is_falsy(self) -> None:
        """An empty Secret is falsy and a non-empty one truthy."""
        assert not Secret("")
        assert Secret("k")

    def test_settings_repr_hides_keys_and_webhooks(self) -> None:
        """repr(settings) contains no API key and no webhook URL."""
        s = Settings.from_env(
            {
                "GEMINI_API_KEY": FAKE_KEY,
                "OPENAI_API_KEY": "sk-openai-SECRET",
                "ANTHROPIC_API_KEY": "sk-ant-SECRET",
                "ZHIPUAI_API_KEY": "zhipu-SECRET",
                "SLACK_WEBHOOK_URL": SLACK_URL,
                "TEAMS_WEBHOOK_URL": TEAMS_URL,
            }
        )
        shown = repr(s) + str(s) + repr(s.providers) + repr(s.configured_providers())
        for secret in (FAKE_KEY, "sk-openai-SECRET", "sk-ant-SECRET", "zhipu-SECRET"):
            assert secret not in shown
        assert "SECRETslackTOKEN" not in shown
        assert "SECRETteamsTOKEN" not in shown
        assert "hooks.slack.com" not in shown
        assert "webhook.office.com" not in shown
        assert "gemini" in shown  # the repr still says something useful

    @pytest.mark.parametrize(
        "url", ["http://u:PWSECRET@127.0.0.1:99999", "http://u:PWSECRET@127.0.0.1/x y"]
    )
    def test_bad_base_url_error_hides_its_credentials(self, url: str) -> None:
        """A refused base URL is shown without the user:password it carried."""
        message = str(_error({"GEMINI_API_KEY": FAKE_KEY, "GEMINI_BASE_URL": url}))
        assert "PWSECRET" not in message
        assert "<redacted>@127.0.0.1" in message

    @pytest.mark.parametrize("port", ["0", "65536", "99999"])
    def test_a_base_url_port_out_of_range_is_refused(self, port: str) -> None:
        """httpx takes any port number; the settings refuse one no socket can use."""
        message = str(_error({"GEMINI_BASE_URL": f"http://127.0.0.1:{port}"}))
        assert "port in 1-65535" in message

    def test_bad_base_url_error_does_not_leak_the_api_key(self) -> None:
        """A configuration error in one variable does not mention another variable's key."""
        message = str(_error({"GEMINI_API_KEY": FAKE_KEY, "GEMINI_BASE_URL": "nope"}))
        assert FAKE_KEY not in message
        assert "GEMINI_BASE_URL" in message


class TestCopies:
    """Derived settings."""

    def test_with_provider_changes_one_provider_only(self) -> None:
        """with_provider returns a copy with one provider changed and the original untouched."""
        s = Settings.from_env({"GEMINI_API_KEY": FAKE_KEY})
        moved = s.with_provider("gemini", base_url="http://127.0.0.1:9000")
        assert moved.providers["gemini"].base_url == "http://127.0.0.1:9000"
        assert s.providers["gemini"].base_url == "https://generativelanguage.googleapis.com"
        assert moved.providers["openai"] == s.providers["openai"]

    def test_replace_returns_a_changed_copy(self) -> None:
        """replace returns a new Settings with the given fields changed."""
        s = Settings.from_env({})
        changed = s.replace(default_team="ml")
        assert changed.default_team == "ml"
        assert s.default_team == "default"
