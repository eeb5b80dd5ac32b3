"""Pricing: the shipped table, hand-computed costs, version matching, overrides, estimates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexus_llm.errors import ConfigError
from nexus_llm.observe.pricing import ModelPrice, PriceTable, estimate_tokens
from nexus_llm.types import Usage

SHIPPED_VERSION = "2026-11-26"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    """The shipped price table."""
    return PriceTable.load()


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class TestShippedTable:
    """nexus_llm/prices.json loads and matches shared/reference/pricing.md."""

    def test_version(self, table: PriceTable) -> None:
        """The shipped table carries its snapshot date as version."""
        assert table.version == SHIPPED_VERSION

    @pytest.mark.parametrize(
        ("model", "rates"),
        [
            ("gemini-2.5-flash", (0.30, 2.50, 0.03)),
            ("gemini-2.5-pro", (1.25, 10.00, 0.125)),
            ("gemini-2.5-flash-lite", (0.10, 0.40, 0.01)),
            ("gemini-2.0-flash", (0.10, 0.40, 0.025)),
            ("gpt-4o-mini", (0.15, 0.60, 0.075)),
            ("claude-haiku-4-5", (1.00, 5.00, 0.10)),
        ],
    )
    def test_reference_rates(
        self, table: PriceTable, model: str, rates: tuple[float, float, float]
    ) -> None:
        """Input, output and cached-input rates equal the reference snapshot."""
        row = table.lookup(model)
        assert row is not None
        assert (row.input, row.output, row.cached_input) == pytest.approx(rates)

    def test_pro_tier(self, table: PriceTable) -> None:
        """gemini-2.5-pro has the >200k tier at 2.50 in / 15.00 out."""
        row = table.lookup("gemini-2.5-pro")
        assert row is not None
        assert row.tier_threshold_tokens == 200_000
        assert row.input_above_tier == 2.50
        assert row.output_above_tier == 15.00


class TestCosts:
    """Hand-computed costs (USD; rates are per 1M tokens)."""

    def test_flash_with_cached_and_thinking(self, table: PriceTable) -> None:
        """Flash: uncached prompt at 0.30, cached at 0.03, visible+thinking output at 2.50."""
        # prompt 10,000 of which 4,000 cached; 1,200 visible + 800 thinking output tokens.
        usage = Usage(
            input_tokens=10_000, cached_tokens=4_000, output_tokens=2_000, reasoning_tokens=800
        )
        expected = (6_000 * 0.30 + 4_000 * 0.03 + 2_000 * 2.50) / 1_000_000  # 0.00692
        price = table.price("gemini-2.5-flash", usage)
        assert price.cost_usd == pytest.approx(expected, abs=1e-12)
        assert price.cost_usd == pytest.approx(0.00692, abs=1e-12)
        assert price.priced is True
        assert price.price_version == SHIPPED_VERSION

    def test_reasoning_tokens_are_not_billed_twice(self, table: PriceTable) -> None:
        """Reasoning tokens are part of output_tokens; changing them alone keeps the cost."""
        a = table.price("gemini-2.5-flash", Usage(input_tokens=100, output_tokens=500))
        b = table.price(
            "gemini-2.5-flash", Usage(input_tokens=100, output_tokens=500, reasoning_tokens=400)
        )
        assert a.cost_usd == b.cost_usd

    def test_pro_below_tier(self, table: PriceTable) -> None:
        """Pro with 150k prompt tokens uses 1.25 in / 10.00 out / 0.125 cached."""
        usage = Usage(input_tokens=150_000, cached_tokens=50_000, output_tokens=3_000)
        expected = (100_000 * 1.25 + 50_000 * 0.125 + 3_000 * 10.00) / 1_000_000  # 0.16125
        assert table.price("gemini-2.5-pro", usage).cost_usd == pytest.approx(expected)
        assert expected == pytest.approx(0.16125)

    def test_pro_at_exactly_200k_is_lower_tier(self, table: PriceTable) -> None:
        """A 200,000-token prompt is still "<= 200k" and billed at the lower tier."""
        usage = Usage(input_tokens=200_000, output_tokens=1_000)
        expected = (200_000 * 1.25 + 1_000 * 10.00) / 1_000_000  # 0.26
        assert table.price("gemini-2.5-pro", usage).cost_usd == pytest.approx(expected)

    def test_pro_above_tier(self, table: PriceTable) -> None:
        """Pro with a 250k-token prompt uses 2.50 in / 15.00 out for the whole call."""
        usage = Usage(input_tokens=250_000, output_tokens=2_000)
        expected = (250_000 * 2.50 + 2_000 * 15.00) / 1_000_000  # 0.655
        assert table.price("gemini-2.5-pro", usage).cost_usd == pytest.approx(expected)
        assert expected == pytest.approx(0.655)

    def test_zero_usage_costs_nothing(self, table: PriceTable) -> None:
        """No tokens, no cost, but still priced."""
        price = table.price("gemini-2.5-flash", Usage())
        assert price.cost_usd == 0.0
        assert price.priced is True

    def test_cache_write_uses_its_rate(self, table: PriceTable) -> None:
        """Anthropic cache writes (part of input_tokens) are billed at the cache-write rate."""
        usage = Usage(input_tokens=3_000, cache_write_tokens=2_000, output_tokens=100)
        expected = (1_000 * 1.00 + 2_000 * 1.25 + 100 * 5.00) / 1_000_000
        assert table.price("claude-haiku-4-5", usage).cost_usd == pytest.approx(expected)

    def test_one_hour_cache_writes_cost_twice_the_input_rate(self, table: PriceTable) -> None:
        """Of 2,000 written tokens, 500 went in with a 1-hour TTL: those are billed at 2x input
        ($2.00 for Haiku 4.5), the other 1,500 at the 5-minute write rate ($1.25)."""
        usage = Usage(
            input_tokens=3_000,
            cache_write_tokens=2_000,
            cache_write_1h_tokens=500,
            output_tokens=100,
        )
        expected = (1_000 * 1.00 + 1_500 * 1.25 + 500 * 2.00 + 100 * 5.00) / 1_000_000
        assert table.price("claude-haiku-4-5", usage).cost_usd == pytest.approx(expected)

    def test_a_one_hour_write_rate_in_the_table_wins(self) -> None:
        """A price row may give its own cache_write_1h; more 1-hour writes than writes never
        bill a token twice."""
        row = ModelPrice(input=1.0, output=2.0, cache_write=1.25, cache_write_1h=3.0)
        usage = Usage(input_tokens=1_000, cache_write_tokens=100, cache_write_1h_tokens=400)
        assert row.cost(usage) == pytest.approx((900 * 1.0 + 100 * 3.0) / 1_000_000)

    def test_row_without_cached_rate_uses_input_rate(self) -> None:
        """A row with no cached_input bills cached tokens at the input rate."""
        row = ModelPrice(input=1.0, output=2.0)
        assert row.cost(Usage(input_tokens=1_000, cached_tokens=400)) == pytest.approx(0.001)


class TestModelMatching:
    """Which row a model id gets."""

    def test_versioned_flash_matches_flash(self, table: PriceTable) -> None:
        """gemini-2.5-flash-001 is priced with the gemini-2.5-flash row."""
        usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
        assert table.price("gemini-2.5-flash-001", usage).cost_usd == pytest.approx(0.30 + 2.50)
        assert table.lookup("gemini-2.5-flash-001") == table.lookup("gemini-2.5-flash")

    def test_versioned_lite_matches_lite_not_flash(self, table: PriceTable) -> None:
        """gemini-2.5-flash-lite-001 is priced with the lite row, not the flash row."""
        usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
        assert table.price("gemini-2.5-flash-lite-001", usage).cost_usd == pytest.approx(
            0.10 + 0.40
        )
        assert table.lookup("gemini-2.5-flash-lite-001") == table.lookup("gemini-2.5-flash-lite")

    def test_provider_prefix_is_ignored(self, table: PriceTable) -> None:
        """models/gemini-2.5-flash and gemini/gemini-2.5-flash find the flash row."""
        flash = table.lookup("gemini-2.5-flash")
        assert table.lookup("models/gemini-2.5-flash") == flash
        assert table.lookup("gemini/gemini-2.5-flash") == flash

    @pytest.mark.parametrize(
        "model", ["gemini-9-ultra", "gemini-2.5", "gemini-2.5-flashy", "", "llama-3"]
    )
    def test_unknown_model_costs_zero_and_is_unpriced(self, table: PriceTable, model: str) -> None:
        """A model not in the table costs 0 with priced=False and the table's version."""
        price = table.price(model, Usage(input_tokens=1_000, output_tokens=1_000))
        assert price.cost_usd == 0.0
        assert price.priced is False
        assert price.price_version == SHIPPED_VERSION


class TestOverride:
    """A user price file on top of the shipped one."""

    def test_override_replaces_and_extends(self, tmp_path: Path) -> None:
        """Override rows replace shipped ones, add new ones, and keep the rest."""
        path = _write(
            tmp_path / "acme.json",
            {
                "version": "acme-2026-12",
                "models": {
                    "gemini-2.5-flash": {"input": 0.20, "output": 2.00},
                    "acme-internal-1": {"input": 1.0, "output": 1.0},
                },
            },
        )
        table = PriceTable.load(path)
        assert table.version == f"{SHIPPED_VERSION}+acme-2026-12"
        million = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
        flash = table.price("gemini-2.5-flash", million)
        assert flash.cost_usd == pytest.approx(2.20)
        assert flash.price_version == f"{SHIPPED_VERSION}+acme-2026-12"
        assert table.price("acme-internal-1", million).cost_usd == pytest.approx(2.0)
        pro = table.price("gemini-2.5-pro", Usage(input_tokens=100_000))
        assert pro.cost_usd == pytest.approx(0.125)  # untouched shipped row: 100k x 1.25/1M

    def test_override_without_version_uses_file_stem(self, tmp_path: Path) -> None:
        """Without a "version" key, the override file's name stands in for it."""
        path = _write(tmp_path / "team-prices.json", {"models": {}})
        assert PriceTable.load(path).version == f"{SHIPPED_VERSION}+team-prices"

    def test_override_does_not_change_the_shipped_table(self, tmp_path: Path) -> None:
        """Loading an override leaves a fresh shipped load unchanged."""
        path = _write(
            tmp_path / "o.json", {"models": {"gemini-2.5-flash": {"input": 9, "output": 9}}}
        )
        PriceTable.load(path)
        row = PriceTable.load().lookup("gemini-2.5-flash")
        assert row is not None
        assert row.input == 0.30

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (None, "missing"),
            ("{not json", "not json"),
            ("", "empty"),
            (json.dumps({"models": {"m": {"input": -0.1, "output": 1}}}), "negative input"),
            (json.dumps({"models": {"m": {"input": 1, "output": -1}}}), "negative output"),
            (json.dumps({"models": {"m": {"input": 1}}}), "no output"),
            (json.dumps({"models": {"m": {"input": "1", "output": 1}}}), "string price"),
            (json.dumps({"models": {"m": {"input": True, "output": 1}}}), "bool price"),
            (json.dumps({"models": {"m": [1, 2]}}), "row not an object"),
            (json.dumps({"version": "x"}), 'no "models"'),
            (json.dumps({"models": [1]}), '"models" not an object'),
            (json.dumps([{"models": {}}]), "top level not an object"),
        ],
    )
    def test_bad_override_is_config_error(
        self, tmp_path: Path, content: str | None, reason: str
    ) -> None:
        """A missing, unreadable or malformed override file raises a one-line ConfigError."""
        path = tmp_path / "prices.json"
        if content is not None:
            path.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            PriceTable.load(path)
        message = str(caught.value)
        assert "\n" not in message, reason
        assert "expected" in message, reason

    def test_missing_override_names_the_variable(self, tmp_path: Path) -> None:
        """A missing override file's error names LLM_PRICES_PATH and the path."""
        path = tmp_path / "nope.json"
        with pytest.raises(ConfigError) as caught:
            PriceTable.load(path)
        assert caught.value.variable == "LLM_PRICES_PATH"
        assert str(path) in str(caught.value)


class TestEstimateTokens:
    """The ~4-characters-a-token estimate used when a provider reports no usage."""

    @pytest.mark.parametrize(
        ("text", "tokens"),
        [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100), ("x" * 401, 101)],
    )
    def test_estimate(self, text: str, tokens: int) -> None:
        """Empty text is 0 tokens; otherwise ceil(chars / 4), at least 1."""
        assert estimate_tokens(text) == tokens
