"""Check 1 — a basic call leaves an audit line and a ledger line (seed §A.1).

OK: the audit log has an `llm_success` line for the call, and the ledger has a line for it with
`actual_cost_usd > 0` or `approx_tokens = true`. NG: the files are missing, or the call failed.
"""

from __future__ import annotations

from nexus_llm import Client, NexusError, ProviderError
from nexus_llm.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from nexus_llm.observe.query import JsonlView

from .result import CheckResult

SEED_NG_HINT = (
    "the log files were not created or the call raised: check LLM_AUDIT_LOG_PATH and "
    "LLM_COST_LEDGER_PATH are writable, and the provider key, base URL and model"
)
THRESHOLD = (
    ">= 1 llm_success audit line and >= 1 ledger line with actual_cost_usd > 0 or approx_tokens"
)


def run_smoke(
    client: Client,
    *,
    prompt: str,
    purpose: str,
    team: str | None = None,
    project: str | None = None,
    provider: str | None = None,
) -> CheckResult:
    settings = client.settings
    result = CheckResult("smoke", threshold=THRESHOLD, hint=SEED_NG_HINT)
    audit = JsonlView(settings.audit_log_path)
    ledger = JsonlView(settings.cost_ledger_path)
    try:
        # dedupe off: the smoke proves the provider path, not the cache
        response = client.generate(
            prompt, purpose=purpose, team=team, project=project, provider=provider, dedupe=False
        )
    except NexusError as error:
        result.add("call", False, _one_line(_describe_failure(error)))
        result.hint = _hint_for(error)
        request_id = error.request_id
        errors = audit.recent_for_request(request_id, event="llm_error") if request_id else []
        result.add(
            "audit log",
            bool(errors),
            f"llm_error recorded in {audit.path}"
            if errors
            else f"no llm_error line in {audit.path}",
        )
        result.measured = "call failed"
        return result
    result.add(
        "call",
        True,
        f"{response.provider}/{response.model} answered in {response.latency_ms:.1f} ms "
        f"({response.usage.input_tokens} in / {response.usage.output_tokens} out tokens)",
    )
    successes = audit.recent_for_request(response.request_id, event="llm_success")
    result.add(
        "audit log",
        bool(successes),
        f"llm_success for request {response.request_id[:12]} in {audit.path}"
        if successes
        else f"no llm_success line for request {response.request_id[:12]} in {audit.path}",
    )
    lines = ledger.recent_for_request(response.request_id)
    billable = [
        line
        for line in lines
        if _positive(line.get("actual_cost_usd")) or line.get("approx_tokens") is True
    ]
    if billable:
        line = billable[0]
        detail = (
            f"actual_cost_usd={_usd(line['actual_cost_usd'])} approx_tokens="
            f"{str(line.get('approx_tokens')).lower()} team={line.get('team')} "
            f"project={line.get('project')} in {ledger.path}"
        )
    elif lines and lines[0].get("priced") is False:
        detail = f"model {response.model} is not in the price table, so its cost is 0"
        result.hint = (
            f"add {response.model} to a price file named by LLM_PRICES_PATH, or use a listed model"
        )
    elif lines:
        detail = (
            f"model {response.model} costs $0 in the price table (a free tier), in {ledger.path}"
        )
        result.hint = "the seed's check needs a cost > 0: rehearse with a paid model"
    else:
        detail = f"no ledger line for request {response.request_id[:12]} in {ledger.path}"
    result.add("cost ledger", bool(billable), detail)
    result.measured = f"llm_success x{len(successes)}, ledger ${response.cost_usd:.7f}" + (
        " (approx)" if response.approx_tokens else ""
    )
    return result


def _usd(value: object) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _hint_for(error: NexusError) -> str:
    """What to check, by what went wrong (the seed's NG hint when nothing more specific fits)."""
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return f"the provider rejected the API key: check {_key_var(error)}"
    if isinstance(error, QuotaExhaustedError):
        return "the provider's quota is used up (daily quota or balance): check the plan/billing"
    if isinstance(error, RateLimitError):
        return "the provider is rate limiting (429): check quota, backoff and cooldown"
    if isinstance(error, NotFoundError):
        return "the model or path is unknown to the provider: check the *_MODEL and *_BASE_URL"
    if isinstance(error, ProviderTimeoutError | ProviderConnectionError):
        return "the provider could not be reached in time: check *_BASE_URL, network, LLM_TIMEOUT_S"
    if isinstance(error, ServerError):
        return "the provider failed on its side (5xx): retry later, or check its status page"
    return SEED_NG_HINT


def _describe_failure(error: NexusError) -> str:
    if isinstance(error, ProviderError):
        return f"{error.provider} failed ({error.error_type}): {error}"
    return str(error)


def _key_var(error: ProviderError) -> str:
    return {
        "gemini": "GEMINI_API_KEY (or GOOGLE_API_KEY)",
        "openai": "OPENAI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
        "glm": "GLM_API_KEY (or ZHIPUAI_API_KEY)",
    }.get(error.provider, "the provider's API key")
