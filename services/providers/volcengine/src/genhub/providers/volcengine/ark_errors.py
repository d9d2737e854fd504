"""Ark SDK exceptions -> GenHub provider errors.

Source: Ark's error-code table (volcengine.com/docs/82379/1299023) and the SDK's exception
classes (``volcenginesdkarkruntime._exceptions``), both summarised in provider-apis.md §1.3-1.4.
The error body is ``{"error": {"code", "message", "param", "type"}}``; the SDK puts the inner
object in ``exc.body`` and ``exc.code``. The message keeps the provider's words (with any secret
we hold cut out); the request id is the server's ``x-request-id`` when it sent one, else the id
in the message ("Request id: ..."), else the SDK's client request id.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable

import httpx
from volcenginesdkarkruntime._exceptions import (
    ArkAPIConnectionError,
    ArkAPIError,
    ArkAPIResponseValidationError,
    ArkAPIStatusError,
    ArkAPITimeoutError,
)

from genhub.providers.sdk import (
    AuthFailed,
    BadOutput,
    ContentRefused,
    InvalidParameter,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)

_REQUEST_ID_IN_MESSAGE = re.compile(r"Request id:\s*([0-9A-Za-z_-]+)", re.IGNORECASE)
# 403 codes that mean "pay first" rather than "you may not".
_QUOTA_403 = ("AccountOverdueError", "AccountOverdue", "InsufficientBalance")
# 429 codes that are the account's own spending cap (安全体验模式 / 推理限额), not throttling.
_QUOTA_429 = ("SetLimitExceeded",)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-trivial secret replaced by ``****``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "****")
    return text


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``retry-after`` (delta or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def map_ark_error(exc: ArkAPIError, secrets: Iterable[str] = ()) -> ProviderError:
    """The GenHub error for an Ark SDK exception (never raises)."""
    secrets = tuple(secrets)
    request_id = _request_id(exc)
    if isinstance(exc, ArkAPITimeoutError):
        return ProviderTimeout("Ark did not answer in time", code="TIMEOUT", request_id=request_id)
    if isinstance(exc, ArkAPIConnectionError):
        cause = redact(str(exc.__cause__ or exc.message), secrets)
        return ProviderUnavailable(
            f"Ark unreachable: {cause}", code="CONNECTION_ERROR", request_id=request_id
        )
    if isinstance(exc, ArkAPIResponseValidationError):
        return BadOutput(
            "Ark answered with a body that does not match its schema",
            code="BAD_RESPONSE",
            request_id=request_id,
        )
    if not isinstance(exc, ArkAPIStatusError):
        return ProviderUnavailable(
            redact(exc.message, secrets), code="ARK_ERROR", request_id=request_id
        )
    status = exc.status_code
    code = exc.code or f"HTTP_{status}"
    message = redact(_provider_message(exc), secrets)
    rid = request_id
    wait = retry_after_seconds(exc.response.headers)
    if status == 429:
        if code.startswith(_QUOTA_429):
            return QuotaExhausted(message, code=code, request_id=rid)
        return RateLimited(
            message,
            retry_after=wait,
            code=code,
            request_id=rid,
        )
    if status >= 500:
        return ProviderUnavailable(
            message,
            retry_after=wait,
            code=code,
            request_id=rid,
        )
    if status == 408:
        return ProviderTimeout(message, code=code, request_id=rid)
    if "Sensitive" in code:
        return ContentRefused(message, code=code, request_id=rid)
    if status == 401:
        return AuthFailed(message, code=code, request_id=rid)
    if status == 403:
        if code.startswith(_QUOTA_403):
            return QuotaExhausted(message, code=code, request_id=rid)
        return AuthFailed(message, code=code, request_id=rid)
    if status == 404 and code.startswith("ModelNotOpen"):
        return AuthFailed(
            message, code=code, request_id=rid
        )  # the account has not activated this model
    return InvalidParameter(message, code=code, request_id=rid)


def _provider_message(exc: ArkAPIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            param = body.get("param")
            return f"{message} (param: {param})" if param and param not in message else message
    if isinstance(body, str) and body:
        return body[:500]
    return f"Ark answered HTTP {exc.status_code}"


def _request_id(exc: ArkAPIError) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, httpx.Response):
        server = response.headers.get("x-request-id")
        if server:
            return str(server)
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        found = _REQUEST_ID_IN_MESSAGE.search(message)
        if found:
            return found.group(1)
    return str(exc.request_id or "")
