"""Every error Nexus raises, in one tree.

::

    NexusError
    ├── ConfigError                  a setting is invalid (variable, value, what is allowed)
    ├── ProviderError                a provider call failed (provider, status, retryable, hint)
    │   ├── AuthenticationError      bad or missing API key
    │   ├── PermissionDeniedError    the key may not use this model or method
    │   ├── NotFoundError            unknown or retired model, wrong path
    │   ├── BadRequestError          the request itself is wrong; retrying will not help
    │   ├── RateLimitError           429; `retry_after_s` holds the provider's hint, if any
    │   │   └── QuotaExhaustedError  a quota that will not reset soon (daily quota, no balance)
    │   ├── ServerError              5xx
    │   │   └── OverloadedError      503 / 529: the provider is shedding load
    │   ├── ProviderTimeoutError     no answer in time
    │   ├── ProviderConnectionError  the connection could not be made or broke
    │   └── MalformedResponseError   an answer we cannot parse
    └── NoProviderAvailableError     every provider in the order failed or was skipped; lists why

Messages never contain an API key, a webhook URL or prompt text: they are built from status
codes, provider error messages and our own words only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class NexusError(Exception):
    """The root of every error raised by Nexus.

    `request_id` is set on errors raised by a client call, so the failed call can be found in
    the audit log.
    """

    request_id: str | None = None


class ConfigError(NexusError):
    """A setting is missing or invalid.

    Args:
        variable: where the value came from (an environment variable, a CLI flag, a file key).
        value: the offending value, already redacted by the caller when it is a secret.
        allowed: what would have been accepted, in words.
    """

    def __init__(self, variable: str, value: str | None, allowed: str) -> None:
        self.variable = variable
        self.value = value
        self.allowed = allowed
        # value None: the whole thing named by `variable` is wrong (a file, a table).
        subject = variable if value is None else f"{variable}={value!r}"
        super().__init__(f"{subject} is invalid: expected {allowed}")


class ProviderError(NexusError):
    """A call to an LLM provider failed.

    `retryable` tells the retry policy whether trying again can help; `retry_after_s` is the
    provider's own hint (Retry-After, Gemini RetryInfo) when it sent one.
    """

    retryable: bool = False
    error_type: str = "provider_error"
    # True when a stream had already handed text to the caller: neither a retry nor another
    # provider can take the call over without repeating what the caller has seen.
    after_output: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after_s: float | None = None,
        provider_code: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.retry_after_s = retry_after_s
        self.provider_code = provider_code
        self.message = message
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.provider} HTTP {self.status}" if self.status is not None else self.provider
        return f"{where}: {self.message}"

    def redact(self, secrets: Iterable[str], prompts: Iterable[str]) -> None:
        """Remove the key and the prompt text a provider echoed back in its error message."""
        message = self.message
        for secret in secrets:
            if len(secret) >= 6:
                message = message.replace(secret, "<redacted>")
        for prompt in prompts:
            if len(prompt) >= 8:
                message = message.replace(prompt, "<prompt>")
        if message != self.message:
            self.message = message
            self.args = (self._text(),)


class AuthenticationError(ProviderError):
    error_type = "auth"


class PermissionDeniedError(ProviderError):
    error_type = "permission_denied"


class NotFoundError(ProviderError):
    error_type = "not_found"


class BadRequestError(ProviderError):
    error_type = "bad_request"


class RateLimitError(ProviderError):
    retryable = True
    error_type = "rate_limit"


class QuotaExhaustedError(RateLimitError):
    retryable = False
    error_type = "quota_exhausted"


# The error types that mean "slow down": an HTTP 429, or the same answer inside a 200 (an
# error event mid-stream, an error envelope in a 200 body) that only its type names.
RATE_LIMIT_TYPES = frozenset({"rate_limit", "quota_exhausted"})


def is_rate_limited(status: object, error_type: object) -> bool:
    """Whether an answer counts as a rate limit (the 429s of the metrics and anomaly rules)."""
    return status == 429 or error_type in RATE_LIMIT_TYPES


class ServerError(ProviderError):
    retryable = True
    error_type = "server"


class OverloadedError(ServerError):
    error_type = "overloaded"


class ProviderTimeoutError(ProviderError):
    retryable = True
    error_type = "timeout"


class ProviderConnectionError(ProviderError):
    retryable = True
    error_type = "connection"


class MalformedResponseError(ProviderError):
    retryable = True
    error_type = "malformed_response"


class NoProviderAvailableError(NexusError):
    """No provider could answer. `reasons` maps each provider tried or skipped to why."""

    def __init__(self, reasons: Sequence[tuple[str, str]]) -> None:
        self.reasons = list(reasons)
        if not self.reasons:
            detail = "no provider is configured"
        else:
            detail = "; ".join(f"{name}: {why}" for name, why in self.reasons)
        super().__init__(f"no LLM provider could answer ({detail})")
