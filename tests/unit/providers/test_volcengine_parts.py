"""The volcengine adapter's pure parts: Jimeng's code table (the rows the fake does not produce),
Retry-After parsing, image sniffing and the client pool's reuse and eviction."""

from __future__ import annotations

import io
import time
from email.utils import formatdate

import httpx
import pytest
from PIL import Image

from genhub.providers.sdk import (
    AuthFailed,
    ContentRefused,
    ErrorClass,
    InvalidParameter,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from genhub.providers.volcengine import media
from genhub.providers.volcengine.ark_errors import redact, retry_after_seconds
from genhub.providers.volcengine.clients import ClientPool
from genhub.providers.volcengine.jimeng_errors import map_jimeng_error

UNAVAILABLE = ErrorClass.PROVIDER_UNAVAILABLE


def _business(code: int) -> dict[str, object]:
    return {"code": code, "message": f"message {code}", "request_id": "r1", "status": code}


@pytest.mark.parametrize(
    ("status", "body", "kind", "error_class", "retryable"),
    [
        (400, _business(50411), ContentRefused, ErrorClass.CONTENT_REFUSED, False),
        (400, _business(50520), ContentRefused, ErrorClass.CONTENT_REFUSED, False),
        (400, _business(50511), ProviderError, ErrorClass.CONTENT_REFUSED, True),
        (429, _business(50430), RateLimited, ErrorClass.RATE_LIMITED, True),
        (500, _business(50501), ProviderUnavailable, UNAVAILABLE, True),
        (200, _business(30403), AuthFailed, ErrorClass.AUTH, False),
        (200, _business(30404), InvalidParameter, ErrorClass.INVALID_PARAMETER, False),
        (
            429,
            {"ResponseMetadata": {"RequestId": "r2", "Error": {"Code": "RequestLimitExceeded"}}},
            RateLimited,
            ErrorClass.RATE_LIMITED,
            True,
        ),
        (
            404,
            {"ResponseMetadata": {"RequestId": "r3", "Error": {"Code": "InvalidActionOrVersion"}}},
            InvalidParameter,
            ErrorClass.INVALID_PARAMETER,
            False,
        ),
        (
            502,
            "<html>bad gateway</html>",
            ProviderUnavailable,
            ErrorClass.PROVIDER_UNAVAILABLE,
            True,
        ),
    ],
)
def test_jimeng_code_table(
    status: int,
    body: object,
    kind: type[ProviderError],
    error_class: ErrorClass,
    retryable: bool,
) -> None:
    error = map_jimeng_error(status, body, {"Retry-After": "4"})
    assert isinstance(error, kind)
    assert (error.error_class, error.retryable) == (error_class, retryable)
    if isinstance(error, RateLimited):
        assert error.retry_after == 4.0


def test_job_failures_are_marked_for_resubmission_only_when_the_job_failed() -> None:
    assert map_jimeng_error(500, _business(50500), {}, job=True).job_failed
    assert not map_jimeng_error(429, _business(50429), {}, job=True).job_failed
    assert not map_jimeng_error(500, _business(50500), {}, job=False).job_failed


def test_secrets_are_cut_out_of_provider_messages() -> None:
    body = {"code": 50201, "message": "bad key sk-abcdef123456 given", "request_id": "r"}
    error = map_jimeng_error(400, body, {}, secrets=("sk-abcdef123456",))
    assert "sk-abcdef123456" not in error.message
    assert redact("x abc y", ("abc",)) == "x abc y"  # too short to be a secret worth masking


def test_retry_after_in_seconds_milliseconds_or_as_a_date() -> None:
    assert retry_after_seconds(httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    in_ten = formatdate(time.time() + 10, usegmt=True)
    wait = retry_after_seconds(httpx.Headers({"retry-after": in_ten}))
    assert wait is not None
    assert 8 <= wait <= 10
    assert retry_after_seconds(httpx.Headers({})) is None


def test_sniffing_png_and_jpeg_headers() -> None:
    for fmt, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        out = io.BytesIO()
        Image.new("RGB", (37, 21)).save(out, format=fmt)
        assert media.sniff(out.getvalue()) == media.ImageInfo(mime, 37, 21)
    assert media.sniff(b"<html>") == media.ImageInfo()
    assert media.mime_from_url("https://x.test/a/b.jpeg?X-Tos-Expires=1") == "image/jpeg"
    assert media.parse_size("2K") == (0, 0)
    assert media.parse_size("1248x832") == (1248, 832)


async def test_the_pool_shares_cached_clients_and_closes_idle_ones_past_its_limit() -> None:
    closed: list[str] = []

    async def close(client: str) -> None:
        closed.append(client)

    pool: ClientPool[str, str] = ClientPool(lambda key: f"client-{key}", close, max_cached=2)
    async with pool.lease("a") as first, pool.lease("a") as again:
        assert first is again
    async with pool.lease("once", cache=False) as once:
        assert once == "client-once"
    assert closed == ["client-once"]
    async with pool.lease("b"):
        assert pool.cached == 2
        async with pool.lease("c"):
            # Over the limit: "a" is idle and goes; "b" is in use and stays.
            assert pool.cached == 2
            assert closed == ["client-once", "client-a"]
    await pool.aclose()
    assert sorted(closed[2:]) == ["client-b", "client-c"]
    with pytest.raises(RuntimeError):
        async with pool.lease("d"):
            pass
