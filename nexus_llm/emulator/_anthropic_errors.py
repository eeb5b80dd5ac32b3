"""Anthropic's error bodies and the headers that travel with them.

Every error is ``{"type": "error", "error": {"type", "message"[, "details"]}, "request_id"}``;
clients classify by ``error.type`` and, for the monthly spend cap, ``error.details.error_code``.
Rate-limit answers carry ``retry-after`` (whole seconds) and the ``anthropic-ratelimit-*``
headers with RFC 3339 reset times. Messages marked "emulator wording" are not the live API's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, final

from ._anthropic import VERSIONS

Headers = tuple[tuple[str, str], ...]

ORGANIZATION_ID: Final = "5d3a9a4e-0c6b-4f7e-9a51-e6d1a7c0e1a7"
_RATE_LIMIT_DOCS: Final = "https://docs.claude.com/en/api/rate-limits"
# A Tier 1 organisation: (bucket, limit per minute) for each anthropic-ratelimit-* header family.
_BUCKETS: Final = (
    ("requests", 50),
    ("tokens", 8_000),
    ("input-tokens", 30_000),
    ("output-tokens", 8_000),
)
_NO_RETRY: Final[Headers] = (("x-should-retry", "false"),)


@final
@dataclass(frozen=True, slots=True)
class AnthropicError:
    """One error answer: HTTP status, ``error.type``, message, optional details and headers."""

    status: int
    type: str
    message: str
    details: Mapping[str, object] | None = None
    headers: Headers = field(default=())

    def body(self, request_id: str) -> dict[str, object]:
        """Return the JSON body, ``details`` left out when there are none."""
        error: dict[str, object] = {"type": self.type, "message": self.message}
        if self.details:
            error["details"] = dict(self.details)
        return {"type": "error", "error": error, "request_id": request_id}


def missing_key_error() -> AnthropicError:
    """401 for a request without ``x-api-key``."""
    return AnthropicError(
        401, "authentication_error", "x-api-key header is required", headers=_NO_RETRY
    )


def invalid_key_error() -> AnthropicError:
    """401 for a wrong, revoked or expired key."""
    return AnthropicError(401, "authentication_error", "invalid x-api-key", headers=_NO_RETRY)


def missing_version_error() -> AnthropicError:
    """400 for a request without the required ``anthropic-version`` header."""
    return invalid_request_error("anthropic-version: header is required")


def unknown_version_error(version: str) -> AnthropicError:
    """400 for an ``anthropic-version`` the API does not know (emulator wording)."""
    return invalid_request_error(
        f"anthropic-version: {version!r} is not a valid version; "
        f"valid versions are {', '.join(VERSIONS)}"
    )


def invalid_request_error(message: str) -> AnthropicError:
    """400 ``invalid_request_error`` for a malformed request."""
    return AnthropicError(400, "invalid_request_error", message)


def model_not_found_error(model: str) -> AnthropicError:
    """404 for a model id the API does not serve: the message is just ``model: <id>``."""
    return AnthropicError(404, "not_found_error", f"model: {model}")


def path_not_found_error() -> AnthropicError:
    """404 for a path under ``/v1/messages`` that no emulated endpoint serves."""
    return AnthropicError(404, "not_found_error", "Not Found")


def method_not_allowed_error(method: str) -> AnthropicError:
    """405 for ``/v1/messages`` called with another method than POST (emulator wording)."""
    return AnthropicError(
        405, "invalid_request_error", f"Method {method} is not allowed for /v1/messages; use POST."
    )


def rate_limit_error(retry_after_s: float, now: datetime) -> AnthropicError:
    """429 for the per-minute request limit, with ``retry-after`` and the rate-limit headers."""
    wait_s = math.ceil(retry_after_s)
    return AnthropicError(
        429,
        "rate_limit_error",
        f"This request would exceed the rate limit for your organization ({ORGANIZATION_ID}) "
        f"of 50 requests per minute. For details, refer to: {_RATE_LIMIT_DOCS}. You can see "
        "the response headers for current usage. Please reduce the prompt length or the "
        "maximum tokens requested, or try again later. You may also contact sales at "
        "https://www.anthropic.com/contact-sales to discuss your options for a rate limit "
        "increase.",
        headers=(
            ("retry-after", str(wait_s)),
            *rate_limit_headers(now, requests_left=0, reset_after_s=wait_s),
        ),
    )


def spend_limit_error(now: datetime) -> AnthropicError:
    """429 for the monthly tier spend cap: ``enforced_spend_limit_reached``, no retry-after."""
    first = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    return AnthropicError(
        429,
        "rate_limit_error",
        "You have reached your API usage limits: your organization has crossed its monthly "
        "API usage threshold, set based on your organization's API tier. You will regain "
        f"access on {first:%Y-%m-%d} at 00:00 UTC.",
        details={"error_code": "enforced_spend_limit_reached"},
    )


def internal_error() -> AnthropicError:
    """500 ``api_error``, the transient failure clients retry."""
    return AnthropicError(500, "api_error", "Internal server error")


def overloaded_error() -> AnthropicError:
    """529 ``overloaded_error``: the API is shedding load for all users."""
    return AnthropicError(529, "overloaded_error", "Overloaded")


def rate_limit_headers(now: datetime, *, requests_left: int, reset_after_s: float) -> Headers:
    """The ``anthropic-ratelimit-*`` headers; only the request bucket moves."""
    headers: list[tuple[str, str]] = []
    for bucket, limit in _BUCKETS:
        remaining = requests_left if bucket == "requests" else limit
        wait = reset_after_s if bucket == "requests" else 0
        prefix = f"anthropic-ratelimit-{bucket}"
        headers += [
            (f"{prefix}-limit", str(limit)),
            (f"{prefix}-remaining", str(remaining)),
            (f"{prefix}-reset", rfc3339(now + timedelta(seconds=wait))),
        ]
    return tuple(headers)


def rfc3339(moment: datetime) -> str:
    """Format a time as the API does: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
