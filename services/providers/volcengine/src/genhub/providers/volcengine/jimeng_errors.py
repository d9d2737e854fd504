"""Jimeng (Visual API) failures -> GenHub provider errors.

Two envelopes exist (provider-apis.md §2.4): business errors
``{"code": 50429, "message": ..., "request_id": ..., "status": 50429}`` with a non-200 HTTP status
(or, for a few codes, 200), and OpenAPI-gateway errors (signature, action, throttling)
``{"ResponseMetadata": {"RequestId", "Error": {"Code", "Message"}}}``. The legacy SDK raises a
bare ``Exception`` for any non-200 answer and for connection failures; the adapter recovers the
status, headers and body from the response itself (see ``jimeng.py``).

Business codes, from Jimeng's image and video API docs (docs/85621/1817045, 1777001):

| code | meaning | GenHub |
|---|---|---|
| 10000 | success | - |
| 50411-50413, 50512, 50518-50522 | input/text risk, copyright | ContentRefused (permanent) |
| 50511 | output image risk ("retry may pass") | retryable, class content_refused |
| 50429, 50430 | QPS / concurrency limit | RateLimited |
| 50500, 50501 | internal (RPC) error | ProviderUnavailable |
| 50400, 30403 | access denied, feature not enabled | AuthFailed |
| 30404, others | feature (req_key) not found, bad parameters | InvalidParameter |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import requests

from genhub.providers.sdk import (
    AuthFailed,
    ContentRefused,
    ErrorClass,
    InvalidParameter,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RetryableError,
)
from genhub.providers.volcengine.ark_errors import redact

OK = 10000
_REFUSED = frozenset({50411, 50412, 50413, 50512, *range(50518, 50523)})
_RETRYABLE_REFUSAL = frozenset({50511})
_RATE = frozenset({50429, 50430})
_INTERNAL = frozenset({50500, 50501})
_DENIED = frozenset({50400, 30403})
_GATEWAY_AUTH = (
    "SignatureDoesNotMatch",
    "InvalidAccessKey",
    "InvalidCredential",
    "InvalidAuthorization",
    "MissingAuthenticationToken",
    "InvalidSecretToken",
    "InvalidTimestamp",
    "AccessDenied",
    "Forbidden",
)
_GATEWAY_RATE = ("RequestLimitExceeded", "FlowLimitExceeded", "Throttling", "TooManyRequests")
_GATEWAY_DOWN = ("InternalError", "InternalServiceError", "ServiceUnavailable")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (header names any case)."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def map_jimeng_error(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    job: bool = False,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """The GenHub error for a Jimeng answer that is not a success.

    Args:
        status: HTTP status (200 for a success envelope whose ``code`` is not 10000).
        body: The decoded JSON body (a dict), or anything else when it was not JSON.
        headers: Response headers (for ``Retry-After``).
        job: The answer is about a submitted job (GetResult): failures other than throttling,
            auth and outages are the job's own, so a retry submits a new job.
        secrets: Values to cut out of the message.
    """
    retry_after = retry_after_seconds(headers)
    if isinstance(body, dict) and isinstance(body.get("ResponseMetadata"), dict):
        meta = body["ResponseMetadata"]
        error = meta.get("Error") or {}
        code = str(error.get("Code") or f"HTTP_{status}")
        message = redact(str(error.get("Message") or code), secrets)
        request_id = str(meta.get("RequestId") or "")
        if code.startswith(_GATEWAY_AUTH) or status in (401, 403):
            return AuthFailed(message, code=code, request_id=request_id)
        if code.startswith(_GATEWAY_RATE) or status == 429:
            return RateLimited(message, code=code, request_id=request_id, retry_after=retry_after)
        if code.startswith(_GATEWAY_DOWN) or status >= 500:
            return ProviderUnavailable(message, code=code, request_id=request_id)
        return InvalidParameter(message, code=code, request_id=request_id)
    if isinstance(body, dict) and "code" in body:
        number = _int(body.get("code"))
        code = str(body.get("code"))
        message = redact(str(body.get("message") or f"Jimeng error {code}"), secrets)
        request_id = str(body.get("request_id") or "")
        kwargs: dict[str, Any] = {"code": code, "request_id": request_id}
        if number in _RATE or status == 429:
            return RateLimited(message, retry_after=retry_after, **kwargs)
        if number in _DENIED or status in (401, 403):
            return AuthFailed(message, **kwargs)
        if number in _REFUSED:
            return ContentRefused(message, **kwargs)
        if number in _RETRYABLE_REFUSAL:
            return RetryableError(
                message, error_class=ErrorClass.CONTENT_REFUSED, job_failed=job, **kwargs
            )
        if number in _INTERNAL or status >= 500:
            return ProviderUnavailable(message, retry_after=retry_after, job_failed=job, **kwargs)
        return InvalidParameter(message, **kwargs)
    text = redact(str(body)[:300], secrets) if body else f"HTTP {status}"
    if status == 429:
        return RateLimited(f"Jimeng: {text}", code="HTTP_429", retry_after=retry_after)
    if status >= 500 or status == 0:
        return ProviderUnavailable(f"Jimeng: {text}", code=f"HTTP_{status}")
    if status in (401, 403):
        return AuthFailed(f"Jimeng: {text}", code=f"HTTP_{status}")
    return InvalidParameter(f"Jimeng: {text}", code=f"HTTP_{status}")


def map_transport_error(exc: BaseException, secrets: Iterable[str] = ()) -> ProviderError:
    """The GenHub error for a failure with no HTTP answer (timeouts, refused connections).

    The SDK re-raises them as bare ``Exception(str(e))``; the original ``requests`` exception
    is still on the ``__context__`` chain.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.Timeout):
            return ProviderTimeout("Jimeng did not answer in time", code="TIMEOUT")
        if isinstance(seen, requests.exceptions.ConnectionError):
            detail = redact(str(seen), secrets)[:300]
            return ProviderUnavailable(f"Jimeng unreachable: {detail}", code="CONNECTION_ERROR")
        seen = seen.__cause__ or seen.__context__
    return ProviderUnavailable(
        f"Jimeng call failed: {redact(str(exc), secrets)[:300]}", code="JIMENG_ERROR"
    )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
