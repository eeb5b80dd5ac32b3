"""Helpers shared by the project's tests."""

from __future__ import annotations

import os

# Variables that would point a test at a real provider or webhook, or change its settings.
_FOREIGN = (
    "_API_KEY",
    "_BASE_URL",
    "_MODEL",
    "WEBHOOK_URL",
    "LLM_",
    "NEXUS_",
    "ANOMALY_",
    "NOTIFY_PREFER",
)


def clean_environ(**extra: str) -> dict[str, str]:
    """The process environment without any Nexus or provider setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not any(part in k for part in _FOREIGN)}
    env.update(extra)
    return env


# Gemini's real answer to a wrong API key (shared/reference/gemini.md §6).
GEMINI_KEY_INVALID_BODY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    }
}
