"""Gemini's error bodies: the ``google.rpc.Status`` envelope with the real ``details``.

Clients find details by ``@type`` (``ErrorInfo``, ``QuotaFailure``, ``Help``, ``RetryInfo``,
``BadRequest``), so each body carries the ones the live API sends for that failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import final

_RATE_LIMIT_DOCS = "https://ai.google.dev/gemini-api/docs/rate-limits"
_QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
_QUOTA_PREFIX = (
    "You exceeded your current quota, please check your plan and billing details. "
    f"For more information on this error, head to: {_RATE_LIMIT_DOCS}. "
    "To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n"
)


@final
@dataclass(frozen=True, slots=True)
class GoogleError:
    """One ``google.rpc.Status`` error: the HTTP status plus the ``{"error": ...}`` envelope."""

    code: int
    status: str
    message: str
    details: Sequence[Mapping[str, object]] = field(default=())

    def body(self) -> dict[str, object]:
        """Return the JSON body, ``details`` left out when there are none (as Google does)."""
        error: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "status": self.status,
        }
        if self.details:
            error["details"] = [dict(detail) for detail in self.details]
        return {"error": error}


def missing_key_error() -> GoogleError:
    """403 for a request that carries no API key at all."""
    return GoogleError(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )


def invalid_key_error() -> GoogleError:
    """400 (not 401) for a wrong API key, with ``ErrorInfo`` reason ``API_KEY_INVALID``."""
    return GoogleError(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    )


def rate_limit_error(model: str, retry_after_s: float) -> GoogleError:
    """429 for the per-minute request quota, with ``RetryInfo`` saying when to come back."""
    return GoogleError(
        429,
        "RESOURCE_EXHAUSTED",
        f"{_QUOTA_PREFIX}* Quota exceeded for metric: {_QUOTA_METRIC}, limit: 10, model: {model}\n"
        f"Please retry in {float(retry_after_s)!r}s.",
        [
            _quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", model, "10"),
            _help_link(),
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": duration(retry_after_s),
            },
        ],
    )


def daily_quota_error(model: str) -> GoogleError:
    """429 for the per-day request quota: a ``PerDay`` quota id and no ``RetryInfo``."""
    return GoogleError(
        429,
        "RESOURCE_EXHAUSTED",
        f"{_QUOTA_PREFIX}* Quota exceeded for metric: {_QUOTA_METRIC}, limit: 250, model: {model}",
        [
            _quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier", model, "250"),
            _help_link(),
        ],
    )


def internal_error() -> GoogleError:
    """500 ``INTERNAL``, the transient server failure clients should retry a few times."""
    return GoogleError(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    )


def unavailable_error() -> GoogleError:
    """503 ``UNAVAILABLE``, Gemini's "model is overloaded" answer."""
    return GoogleError(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def model_not_found_error(model: str) -> GoogleError:
    """404 for a model id Gemini does not serve."""
    return GoogleError(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    )


def path_not_found_error(path: str) -> GoogleError:
    """404 for a URL no emulated endpoint answers."""
    return GoogleError(404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")


def method_not_allowed_error(method: str, path: str) -> GoogleError:
    """405 for a known URL called with the wrong HTTP method (emulator wording)."""
    return GoogleError(
        405, "INVALID_ARGUMENT", f"HTTP method {method} is not allowed for {path}; use POST."
    )


def invalid_argument_error(message: str) -> GoogleError:
    """400 ``INVALID_ARGUMENT`` for a bad request body, with a ``BadRequest`` detail."""
    return GoogleError(
        400,
        "INVALID_ARGUMENT",
        message,
        [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"description": message.strip()}],
            }
        ],
    )


def duration(seconds: float) -> str:
    """Format seconds as a protobuf ``Duration`` string: ``"2s"``, ``"1.5s"``."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _quota_failure(quota_id: str, model: str, value: str) -> dict[str, object]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": _QUOTA_METRIC,
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": value,
            }
        ],
    }


def _help_link() -> dict[str, object]:
    return {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_LIMIT_DOCS}],
    }
