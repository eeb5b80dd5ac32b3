"""What a call cost, from the usage the provider reported and a versioned price table.

The table ships as `nexus_llm/prices.json` (every row names its source). `LLM_PRICES_PATH` points
at a user file of the same shape whose rows replace or extend the shipped ones; the ledger then
records both versions (`2026-11-26+acme-2026-12`) so a report can say which prices it used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from ..types import Usage

_PER_TOKEN = 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens. Tier prices apply when the prompt exceeds `tier_threshold_tokens`."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None  # unset: twice the input rate (Anthropic's rule)
    tier_threshold_tokens: int | None = None
    input_above_tier: float | None = None
    output_above_tier: float | None = None

    def cost(self, usage: Usage) -> float:
        above = self.tier_threshold_tokens is not None and (
            usage.input_tokens > self.tier_threshold_tokens
        )
        in_rate = (
            self.input_above_tier if above and self.input_above_tier is not None else self.input
        )
        out_rate = (
            self.output_above_tier if above and self.output_above_tier is not None else self.output
        )
        cached_rate = self.cached_input if self.cached_input is not None else in_rate
        write_rate = self.cache_write if self.cache_write is not None else in_rate
        write_1h_rate = self.cache_write_1h if self.cache_write_1h is not None else 2 * in_rate
        # input_tokens counts every prompt token: cache reads and cache writes are parts of it,
        # each billed at its own rate, so only the rest is billed at the input rate; a write
        # with a 1-hour TTL costs more than one with the default 5 minutes.
        uncached = max(usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens, 0)
        written_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        dollars = (
            uncached * in_rate
            + usage.cached_tokens * cached_rate
            + (usage.cache_write_tokens - written_1h) * write_rate
            + written_1h * write_1h_rate
            + usage.output_tokens * out_rate
        ) / _PER_TOKEN
        return round(dollars, 10)


@dataclass(frozen=True, slots=True)
class Price:
    """The outcome of pricing one call."""

    cost_usd: float
    price_version: str
    priced: bool  # False when the model is not in the table (cost recorded as 0)


class PriceTable:
    def __init__(self, models: Mapping[str, ModelPrice], version: str) -> None:
        self._models = dict(models)
        self.version = version
        # Longest id first, so "gemini-2.5-flash-lite-001" matches the lite row, not the flash one.
        self._ids_longest_first = sorted(self._models, key=len, reverse=True)

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        """The shipped table, with the rows of `override` (if given) on top."""
        shipped = json.loads(
            resources.files("nexus_llm").joinpath("prices.json").read_text("utf-8")
        )
        models = _rows(shipped, "nexus_llm/prices.json")
        version = str(shipped["version"])
        if override is not None:
            try:
                user = json.loads(override.read_text("utf-8"))
            except OSError as exc:
                raise ConfigError(
                    "LLM_PRICES_PATH", str(override), f"a readable file ({exc.strerror})"
                ) from None
            except ValueError:
                raise ConfigError("LLM_PRICES_PATH", str(override), "a JSON file") from None
            models.update(_rows(user, f"LLM_PRICES_PATH file {override}"))
            version = f"{version}+{user.get('version', override.stem)}"
        return cls(models, version)

    def lookup(self, model: str) -> ModelPrice | None:
        """The row for a model id, tolerating provider prefixes and version suffixes."""
        bare = model.rsplit("/", 1)[-1]
        if bare in self._models:
            return self._models[bare]
        for known in self._ids_longest_first:
            if bare.startswith(known + "-") or bare.startswith(known + "@"):
                return self._models[known]
        return None

    def price(self, model: str, usage: Usage) -> Price:
        row = self.lookup(model)
        if row is None:
            return Price(0.0, self.version, priced=False)
        return Price(row.cost(usage), self.version, priced=True)


def _rows(table: object, where: str) -> dict[str, ModelPrice]:
    models = table.get("models") if isinstance(table, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(where, None, 'a JSON object with a "models" object of model rows')
    rows: dict[str, ModelPrice] = {}
    for model_id, row in models.items():
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: model {model_id!r}", None, "an object of prices")
        try:
            rows[model_id] = ModelPrice(
                input=_rate(row, "input", required=True),  # type: ignore[arg-type]
                output=_rate(row, "output", required=True),  # type: ignore[arg-type]
                cached_input=_rate(row, "cached_input"),
                cache_write=_rate(row, "cache_write"),
                cache_write_1h=_rate(row, "cache_write_1h"),
                tier_threshold_tokens=_threshold(row),
                input_above_tier=_rate(row, "input_above_tier"),
                output_above_tier=_rate(row, "output_above_tier"),
            )
        except ValueError as exc:
            raise ConfigError(
                f"{where}: model {model_id!r} {exc}",
                None,
                "non-negative USD-per-1M-token numbers, and a whole tier_threshold_tokens > 0",
            ) from None
    return rows


def _threshold(row: Mapping[str, object]) -> int | None:
    value = row.get("tier_threshold_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"tier_threshold_tokens={value!r}")
    return value


def _rate(row: Mapping[str, object], key: str, *, required: bool = False) -> float | None:
    if key not in row:
        if required:
            raise ValueError(f"{key} is missing")
        return None
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key}={value!r}")
    if value < 0:
        raise ValueError(f"{key}={value!r}")
    return float(value)


def estimate_tokens(text: str) -> int:
    """A provider-neutral estimate used only when a provider reports no usage: ~4 chars a token."""
    return max(1, math.ceil(len(text) / 4)) if text else 0
