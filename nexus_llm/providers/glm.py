"""Zhipu GLM chat completions (BigModel `open.bigmodel.cn/api/paas/v4` and Z.ai
`api.z.ai/api/paas/v4`, one protocol), per shared/reference/glm.md.

The request and the success body are OpenAI's; the errors are not. Zhipu puts a business code in
`{"error": {"code": "1113", ...}}` and reuses HTTP 429 for very different things (out of balance,
concurrency limit, platform overload) without any Retry-After header, so the code decides the
class and the status only breaks ties for codes we do not know.
"""

from __future__ import annotations

from typing import Final

from ..config import ProviderSettings
from ..errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply
from .base import error_class_for_status, load_json_object, parse_retry_after
from .chat_completions import (
    ChatStreamParser,
    build_chat_request,
    build_chat_stream_request,
    error_body,
    header,
    is_error_envelope,
    parse_chat_success,
)

# Business code → error class (docs.bigmodel.cn/cn/api/api-code, shared/reference/glm.md §5-6).
_BY_CODE: Final[dict[str, type[ProviderError]]] = {
    "500": ServerError,  # internal error
    **dict.fromkeys(("1000", "1001", "1002", "1003", "1004", "1111"), AuthenticationError),
    # The account exists but may not be used: inactive, locked, in violation; API not granted.
    **dict.fromkeys(("1110", "1112", "1121", "1220"), PermissionDeniedError),
    "1113": QuotaExhaustedError,  # no balance or resource pack: billing, not a pause
    "1120": ServerError,  # "cannot access your account, try again later"
    **dict.fromkeys(("1200", "1210", "1212", "1213", "1214", "1215"), BadRequestError),
    **dict.fromkeys(("1211", "1221", "1222"), NotFoundError),  # unknown model, API gone
    "1230": ServerError,
    "1231": BadRequestError,  # a request with this request_id already exists
    "1234": ServerError,  # network error inside the platform
    **dict.fromkeys(("1261", "1300", "1301"), BadRequestError),  # prompt too long, unsafe text
    **dict.fromkeys(("1302", "1303"), RateLimitError),  # concurrency / frequency limit
    "1304": QuotaExhaustedError,  # daily call quota used up
    **dict.fromkeys(("1305", "1312"), OverloadedError),  # platform or model overloaded
    # Coding Plan: usage cap until next_flush_time, or the plan expired.
    **dict.fromkeys(("1308", "1309", "1310"), QuotaExhaustedError),
}


class GLMAdapter:
    name = "glm"

    def build_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        # The key goes out as issued (`{id}.{secret}`), as the official SDK does by default;
        # the platform still accepts the legacy self-signed JWT but no longer needs it.
        # English error messages (Z.ai's examples send this header) keep audit logs readable.
        return build_chat_request(
            request,
            settings,
            max_tokens_field="max_tokens",
            headers={"accept-language": "en-US,en"},
        )

    def build_stream_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        # GLM attaches usage to the last chunk unasked; `stream_options` is OpenAI's switch.
        return build_chat_stream_request(
            request,
            settings,
            max_tokens_field="max_tokens",
            headers={"accept-language": "en-US,en"},
            include_usage=False,
        )

    def new_stream_parser(self, *, model: str) -> ChatStreamParser:
        # An error chunk arrives after HTTP 200: its business code decides, as in a 200 body.
        return ChatStreamParser(
            provider=self.name,
            model=model,
            classify=lambda body: self._error(HttpReply(200, {}, body)),
        )

    def parse_reply(self, reply: HttpReply, *, model: str) -> ProviderReply:
        data = load_json_object(reply.body) if reply.status == 200 else None
        if reply.status != 200 or (data is not None and is_error_envelope(data)):
            raise self._error(reply)
        if data is None:
            raise MalformedResponseError(
                "the response body is not a JSON object", provider=self.name, status=reply.status
            )
        return parse_chat_success(data, reply, provider=self.name, model=model)

    def _error(self, reply: HttpReply) -> ProviderError:
        status = reply.status
        body = error_body(reply.body)
        code = body.code if body else None
        cls = _BY_CODE.get(code or "")
        if cls is None:
            cls = error_class_for_status(400 if status == 200 else status)
        message = (body.message if body else None) or "no error details in the response"
        # Zhipu sends no Retry-After; a proxy in front of it might.
        hint = parse_retry_after(header(reply.headers, "retry-after"))
        return cls(
            message,
            provider=self.name,
            status=status,
            retry_after_s=hint if cls is RateLimitError else None,
            provider_code=code,
        )
