"""Every ``openai`` SDK exception mapped into GenHub's provider errors, at one border.

The SDK runs with ``max_retries=0``, so each failure reaches us once and the dispatcher decides
about retries. The mapping (also the table in ``docs/providers-openai.md``):

=====================================================  ======================  =========
SDK exception (HTTP status, error ``code``)            GenHub class            retried
=====================================================  ======================  =========
RateLimitError 429, ``insufficient_quota`` and other   QuotaExhausted          no
billing codes (also on 400/403)
RateLimitError 429                                     RateLimited             yes
BadRequestError 400, ``content_policy_violation`` /    ContentRefused          no
``moderation_blocked`` / ``content_filter``
BadRequestError 400, NotFoundError 404 (the model),    InvalidParameter        no
UnprocessableEntityError 422, other 4xx
AuthenticationError 401, PermissionDeniedError 403     AuthFailed              no
408, ConflictError 409                                 ProviderTimeout /       yes
                                                       ProviderUnavailable
InternalServerError 5xx                                ProviderUnavailable     yes
APITimeoutError                                        ProviderTimeout         yes
APIConnectionError                                     ProviderUnavailable     yes
APIResponseValidationError (a 2xx the SDK can't read)  BadOutput               yes
=====================================================  ======================  =========

Each error carries the provider's own message (from the ``{"error": {"message": ...}}`` body)
with any secret removed, the provider's ``code`` (or GenHub's class code), ``Retry-After``
(``retry-after-ms`` first, then ``retry-after`` in seconds or as an HTTP date, as the SDK's own
retry loop reads them) and the ``x-request-id``. The SDK exception is never chained: it holds
the request, whose headers hold the key.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import re
import time
from collections.abc import Iterator, Mapping

import httpx2
import openai

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

# Error codes OpenAI (and compatible services) use for a refused prompt or output.
CONTENT_CODES = frozenset({"content_policy_violation", "moderation_blocked", "content_filter"})
# Billing and quota codes: retrying cannot help until someone pays.
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})
# A masked key as providers echo it back ("sk-abc*********wxyz"): drop the whole token.
_MASKED_TOKEN = re.compile(r"\S*\*{3,}\S*")
_MAX_MESSAGE_CHARS = 2000


def redact(text: str, secret: str) -> str:
    """``text`` without ``secret`` and without masked tokens such as ``sk-ab****wxyz``."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _MASKED_TOKEN.sub("[redacted]", text)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait, or None.

    ``retry-after-ms`` (milliseconds, OpenAI's own) wins over ``retry-after`` (RFC 9110 §10.2.3:
    delay-seconds or an HTTP-date). Negative, unparsable or non-finite values are ignored.
    """
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / divisor
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when is not None:
            return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


def _provider_message(exc: openai.APIError, secret: str) -> str:
    body = exc.body
    message = ""
    if isinstance(body, dict):
        raw = body.get("message")
        message = raw if isinstance(raw, str) else ""
    elif isinstance(body, str):
        message = body
    if not message:
        message = exc.message
    return redact(message, secret)[:_MAX_MESSAGE_CHARS]


def translate(exc: openai.OpenAIError, *, provider: str, secret: str = "") -> ProviderError:
    """The GenHub error for an SDK exception (see the module table)."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(f"{provider}: the request timed out", code="PROVIDER_TIMEOUT")
    if isinstance(exc, openai.APIConnectionError):
        cause = redact(str(exc.__cause__ or exc.message), secret)[:300]
        return ProviderUnavailable(
            f"{provider}: connection failed ({cause})", code="PROVIDER_CONNECTION_ERROR"
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return BadOutput(
            f"{provider}: the response did not match the API schema",
            request_id=exc.response.headers.get("x-request-id") or "",
        )
    if not isinstance(exc, openai.APIStatusError):
        # Raised before any request, e.g. no API key: an operator must configure one.
        return AuthFailed(
            f"{provider}: {redact(str(exc), secret)[:300]}", code="PROVIDER_NOT_CONFIGURED"
        )
    status = exc.status_code
    code = exc.code or ""
    message = _provider_message(exc, secret)
    request_id = exc.request_id or ""
    retry_after = retry_after_seconds(exc.response.headers)
    if code in QUOTA_CODES or status == 402:
        return QuotaExhausted(message, code=code, request_id=request_id)
    if status == 429:
        return RateLimited(message, code=code, retry_after=retry_after, request_id=request_id)
    if status in (401, 403):
        return AuthFailed(message, code=code, request_id=request_id)
    if code in CONTENT_CODES:
        return ContentRefused(message, code=code, request_id=request_id)
    if status == 408:
        return ProviderTimeout(message, code=code, retry_after=retry_after, request_id=request_id)
    if status == 409 or status >= 500:
        return ProviderUnavailable(
            message, code=code, retry_after=retry_after, request_id=request_id
        )
    return InvalidParameter(message, code=code, request_id=request_id)


@contextlib.contextmanager
def translated(provider: str, secret: str = "") -> Iterator[None]:
    """Raise SDK exceptions from the block as GenHub provider errors (never chained)."""
    try:
        yield
    except openai.OpenAIError as exc:
        raise translate(exc, provider=provider, secret=secret) from None
    except httpx2.TimeoutException:
        # Raised unwrapped while a streamed body (the video content) is being read.
        raise ProviderTimeout(f"{provider}: reading the answer timed out") from None
    except httpx2.TransportError as exc:
        cause = redact(str(exc), secret)[:300]
        raise ProviderUnavailable(
            f"{provider}: the connection broke while reading the answer ({cause})",
            code="PROVIDER_CONNECTION_ERROR",
        ) from None
