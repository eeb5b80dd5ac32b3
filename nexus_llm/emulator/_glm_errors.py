"""Zhipu GLM's error bodies: ``{"error": {"code": "<business code>", "message": ...}}``.

The code is a string; the HTTP status is the one the platform pairs with it (1113, 1302 and
1305 all arrive as 429, and without any ``Retry-After``). Messages are Chinese as on
open.bigmodel.cn, or English as on api.z.ai when the request's ``Accept-Language`` asks for it.
The 1113, 1211, 1302 and 1305 texts are captured answers; the others follow the documented
code table (docs.bigmodel.cn/cn/api/api-code) and, in English, translate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, final

from ._chat_completions import Problem

# code → (Chinese, English); "{0}" is the field or API named by the message.
_MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "500": ("内部错误", "Internal error"),
    "1001": (
        "Header中未收到Authorization参数，无法进行身份验证。",
        "Authorization parameter not received in the header, unable to authenticate.",
    ),
    "1002": (
        "Authorization Token非法，请确认Authorization Token正确传递。",
        "Authorization Token is invalid, please make sure it is passed correctly.",
    ),
    "1003": (
        "Authorization Token已过期，请重新生成/获取。",
        "Authorization Token has expired, please generate or obtain a new one.",
    ),
    "1113": (
        "余额不足或无可用资源包,请充值。",
        "Insufficient balance or no resource package. Please recharge.",
    ),
    "1210": (
        "API 调用参数有误，请检查文档。",
        "Invalid API parameters, please check the documentation.",
    ),
    "1211": ("模型不存在，请检查模型代码。", "Unknown Model, please check the model code."),
    "1213": ("未正常接收到{0}参数。", "The {0} parameter was not received."),
    "1214": ("{0}参数非法。请检查文档。", "Invalid {0} parameter. Please check the documentation."),
    "1222": ("API {0} 不存在", "API {0} does not exist"),
    "1302": ("您的账户已达到速率限制，请您控制请求频率", "Rate limit reached for requests"),
    "1305": (
        "该模型当前访问量过大，请您稍后再试",
        "The service may be temporarily overloaded, please try again later",
    ),
}


@final
@dataclass(frozen=True, slots=True)
class GLMError:
    """One GLM error: the HTTP status, the business code and the message."""

    status: int
    code: str
    message: str

    def body(self) -> dict[str, object]:
        """The JSON body."""
        return {"error": {"code": self.code, "message": self.message}}


def business_error(status: int, code: str, *, english: bool, subject: str = "") -> GLMError:
    """The error for a documented business ``code``, in the language asked for."""
    chinese, english_text = _MESSAGES[code]
    return GLMError(status, code, (english_text if english else chinese).format(subject))


def missing_key_error(*, english: bool) -> GLMError:
    """401 / 1001: no ``Authorization`` header."""
    return business_error(401, "1001", english=english)


def invalid_key_error(*, english: bool) -> GLMError:
    """401 / 1002: a key (or JWT) the platform does not accept."""
    return business_error(401, "1002", english=english)


def expired_token_error(*, english: bool) -> GLMError:
    """401 / 1003: a legacy JWT past its ``exp``."""
    return business_error(401, "1003", english=english)


def no_balance_error(*, english: bool) -> GLMError:
    """429 / 1113: out of balance. Same status as a rate limit; only the code differs."""
    return business_error(429, "1113", english=english)


def rate_limit_error(*, english: bool) -> GLMError:
    """429 / 1302: concurrency limit of the account; no retry hint of any kind."""
    return business_error(429, "1302", english=english)


def overloaded_error(*, english: bool) -> GLMError:
    """429 / 1305: the platform or model is overloaded."""
    return business_error(429, "1305", english=english)


def internal_error(*, english: bool) -> GLMError:
    """500 / 500."""
    return business_error(500, "500", english=english)


def model_not_found_error(*, english: bool) -> GLMError:
    """400 / 1211: unknown model code."""
    return business_error(400, "1211", english=english)


def api_not_found_error(path: str, *, english: bool) -> GLMError:
    """404 / 1222 for a URL no emulated endpoint serves."""
    return business_error(404, "1222", english=english, subject=path)


def method_not_allowed_error(method: str, path: str) -> GLMError:
    """405 for a known URL called with the wrong method (emulator wording)."""
    return GLMError(
        405, "1210", f"[nexus emulator] HTTP method {method} is not allowed for {path}; use POST."
    )


def problem_error(problem: Problem, *, english: bool) -> GLMError:
    """400 for a body that fails validation: 1210 unreadable, 1213 missing, 1214 invalid."""
    if problem.kind == "json":
        return business_error(400, "1210", english=english)
    code = "1213" if problem.kind == "missing" else "1214"
    return business_error(400, code, english=english, subject=problem.param or "")
