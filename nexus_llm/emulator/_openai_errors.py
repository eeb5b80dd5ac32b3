"""OpenAI's error bodies: ``{"error": {"message", "type", "param", "code"}}`` with the live
API's wording, status and, for rate limits, the retry headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from ._chat_completions import Problem, json_type
from ._openai import duration

_KEYS_PAGE = "https://platform.openai.com/account/api-keys"


@final
@dataclass(frozen=True, slots=True)
class OpenAIError:
    """One OpenAI error: the HTTP status plus the envelope's four fields.

    Args:
        retry_after_s: Set on rate limits, so the routes send the matching retry headers.
    """

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after_s: float | None = None

    def body(self) -> dict[str, object]:
        """The JSON body; ``param`` and ``code`` are always present, often null."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def missing_key_error() -> OpenAIError:
    """401 for a request without ``Authorization: Bearer``."""
    return OpenAIError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
        "(with blank username) if you're accessing the API from your browser and are prompted "
        f"for a username and password. You can obtain an API key from {_KEYS_PAGE}.",
    )


def invalid_key_error(key: str) -> OpenAIError:
    """401 ``invalid_api_key``; like OpenAI, the message shows the key masked."""
    return OpenAIError(
        401,
        f"Incorrect API key provided: {mask(key)}. You can find your API key at {_KEYS_PAGE}.",
        code="invalid_api_key",
    )


def rate_limit_error(model: str, retry_after_s: float) -> OpenAIError:
    """429 ``rate_limit_exceeded`` on the per-minute request budget, with a retry hint."""
    return OpenAIError(
        429,
        f"Rate limit reached for {model} in organization org-nexus-emulator on requests per min "
        f"(RPM): Limit 500, Used 500, Requested 1. Please try again in {duration(retry_after_s)}."
        " Visit https://platform.openai.com/account/rate-limits to learn more.",
        type="requests",
        code="rate_limit_exceeded",
        retry_after_s=retry_after_s,
    )


def insufficient_quota_error() -> OpenAIError:
    """429 ``insufficient_quota``: out of credit; no retry hint, since waiting will not help."""
    return OpenAIError(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type="insufficient_quota",
        code="insufficient_quota",
    )


def server_error() -> OpenAIError:
    """500 ``server_error``."""
    return OpenAIError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )


def overloaded_error() -> OpenAIError:
    """503, OpenAI's "engine is overloaded"."""
    return OpenAIError(
        503, "The engine is currently overloaded, please try again later", type="server_error"
    )


def model_not_found_error(model: str) -> OpenAIError:
    """404 ``model_not_found``."""
    return OpenAIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def invalid_url_error(method: str, path: str) -> OpenAIError:
    """404 for a URL the API does not have."""
    return OpenAIError(404, f"Invalid URL ({method} {path})")


def invalid_method_error(method: str, path: str) -> OpenAIError:
    """405 for a known URL called with the wrong method."""
    return OpenAIError(405, f"Invalid method for URL ({method} {path})")


def unsupported_max_tokens_error() -> OpenAIError:
    """400 for ``max_tokens`` sent to a reasoning model."""
    return OpenAIError(
        400,
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        param="max_tokens",
        code="unsupported_parameter",
    )


def json_word_required_error() -> OpenAIError:
    """400 for JSON mode when no message mentions JSON."""
    return OpenAIError(
        400,
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
        "'json_object'.",
        param="messages",
    )


def problem_error(problem: Problem) -> OpenAIError:
    """400 for a body that fails validation, worded as OpenAI words it."""
    param, got = problem.param, problem.got
    if problem.kind == "json":
        return OpenAIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but "
            "what was sent was not valid JSON. If you have trouble figuring out how to fix this, "
            "please contact us through our help center at help.openai.com.)",
        )
    if problem.kind == "unknown":
        return OpenAIError(400, f"Unrecognized request argument supplied: {param}")
    if problem.kind == "missing" and param == "model":
        return OpenAIError(400, "you must provide a model parameter")
    if problem.kind == "missing":
        return OpenAIError(
            400,
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    if problem.kind == "empty":
        return OpenAIError(
            400,
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.",
            param=param,
            code="empty_array",
        )
    if problem.kind == "enum":
        allowed = [f"'{value}'" for value in problem.allowed]
        listed = (
            ", ".join(allowed[:-1]) + f", and {allowed[-1]}" if len(allowed) > 1 else allowed[0]
        )
        return OpenAIError(
            400,
            f"Invalid value: '{got}'. Supported values are: {listed}.",
            param=param,
            code="invalid_value",
        )
    if problem.kind in ("min", "max"):
        number = "decimal" if param == "temperature" else "integer"
        side, sign, short = (
            ("below minimum", ">=", "below_min")
            if problem.kind == "min"
            else ("above maximum", "<=", "above_max")
        )
        return OpenAIError(
            400,
            f"Invalid '{param}': {number} {side} value. Expected a value {sign} "
            f"{problem.bound:g}, but got {got} instead.",
            param=param,
            code=f"{number}_{short}_value",
        )
    expected = problem.expected_type
    article = "an" if expected[:1] in ("a", "e", "i", "o", "u") else "a"
    return OpenAIError(
        400,
        f"Invalid type for '{param}': expected {article} {expected}, but got {json_type(got)} "
        "instead.",
        param=param,
        code="invalid_type",
    )


def mask(key: str) -> str:
    """A key as OpenAI echoes it: the first 3 and last 4 characters, stars between."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]
