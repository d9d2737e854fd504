"""The OpenAI adapter's error mapping, through the official SDK against the OpenAI fake: every
failure becomes the GenHub class the docs' table names, with the provider's message, code,
request id and Retry-After, and nothing is retried inside the SDK."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from genhub.providers.openai.errors import redact, retry_after_seconds
from genhub.providers.sdk import ErrorClass, ProviderError
from tests.fakes.openai import FakeOpenAI
from tests.fakes.openai_faults import QUOTA, Fault, parse, refusal
from tests.support.openai_env import KEY, adapter, call, fake
from tests.support.tasks import S

__all__ = ["fake"]


def image(prompt: str, model: str = "dall-e-3") -> S.Task:
    return S.Task(
        task_id="t-" + model, provider="openai", model=model, image=S.ImageSpec(prompt=prompt)
    )


async def failure(fake: FakeOpenAI, task: S.Task, **settings: Any) -> ProviderError:
    provider = adapter(fake.base_url, **settings)
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.generate(call(task))
    finally:
        await provider.aclose()
    return raised.value


@pytest.mark.parametrize(
    ("prompt", "error_class", "retryable", "code"),
    [
        ("[fail:400]", ErrorClass.INVALID_PARAMETER, False, "INVALID_PARAMETER"),
        ("[fail:401]", ErrorClass.AUTH, False, "invalid_api_key"),
        ("[fail:403]", ErrorClass.AUTH, False, "unsupported_country_region_territory"),
        ("[fail:404]", ErrorClass.INVALID_PARAMETER, False, "model_not_found"),
        ("[fail:408]", ErrorClass.TIMEOUT, True, "TIMEOUT"),
        ("[fail:409]", ErrorClass.PROVIDER_UNAVAILABLE, True, "PROVIDER_UNAVAILABLE"),
        ("[fail:422]", ErrorClass.INVALID_PARAMETER, False, "INVALID_PARAMETER"),
        ("[fail:429]", ErrorClass.RATE_LIMITED, True, "rate_limit_exceeded"),
        ("[quota]", ErrorClass.QUOTA_EXHAUSTED, False, "insufficient_quota"),
        ("[refuse]", ErrorClass.CONTENT_REFUSED, False, "content_policy_violation"),
        ("[fail:500]", ErrorClass.PROVIDER_UNAVAILABLE, True, "PROVIDER_UNAVAILABLE"),
        ("[fail:503]", ErrorClass.PROVIDER_UNAVAILABLE, True, "PROVIDER_UNAVAILABLE"),
        ("[empty]", ErrorClass.EMPTY_RESULT, True, "EMPTY_RESULT"),
    ],
)
async def test_each_failure_maps_to_its_class_with_the_providers_message_and_request_id(
    fake: FakeOpenAI, prompt: str, error_class: ErrorClass, retryable: bool, code: str
) -> None:
    error = await failure(fake, image(f"a cat {prompt}"))
    assert error.error_class is error_class
    assert error.retryable is retryable
    assert error.code == code
    (seen,) = fake.requests("images")  # exactly one request: the SDK does not retry
    assert seen.headers["x-stainless-retry-count"] == "0"
    assert error.request_id == seen.request_id
    if prompt != "[empty]":
        assert error.message == fake_message(prompt)


def fake_message(prompt: str) -> str:
    """What the fake said, per the fault tables (the adapter must pass it on unchanged)."""
    wanted = parse(prompt)
    if wanted.quota:
        return QUOTA.message
    if wanted.refuse:
        return refusal("dall-e-3").message
    assert wanted.fail is not None
    return Fault.of(wanted.fail).message


async def test_gpt_image_moderation_is_a_content_refusal(fake: FakeOpenAI) -> None:
    error = await failure(fake, image("a cat [refuse]", "gpt-image-1"))
    assert error.error_class is ErrorClass.CONTENT_REFUSED
    assert error.code == "moderation_blocked"
    assert not error.retryable


async def test_quota_exhaustion_is_permanent_but_counts_against_the_provider(
    fake: FakeOpenAI,
) -> None:
    error = await failure(fake, image("a cat [quota]"))
    assert not error.retryable
    assert error.provider_side  # opens the circuit breaker
    assert "exceeded your current quota" in error.message


@pytest.mark.parametrize(
    ("directive", "seconds"),
    [("[retry-after:3]", 3.0), ("[retry-after-ms:250]", 0.25)],
)
async def test_retry_after_headers_reach_the_error(
    fake: FakeOpenAI, directive: str, seconds: float
) -> None:
    error = await failure(fake, image(f"a cat [fail:429] {directive}"))
    assert error.retry_after == pytest.approx(seconds)


async def test_a_slow_answer_is_a_retryable_timeout(fake: FakeOpenAI) -> None:
    error = await failure(fake, image("a cat [sleep:2000]"), timeout_seconds=0.3)
    assert error.error_class is ErrorClass.TIMEOUT
    assert error.retryable


async def test_a_refused_connection_is_provider_unavailable(fake: FakeOpenAI) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = adapter(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.generate(call(image("a cat")))
    finally:
        await provider.aclose()
    assert raised.value.error_class is ErrorClass.PROVIDER_UNAVAILABLE
    assert raised.value.retryable


async def test_a_wrong_key_is_permanent_and_the_key_never_appears(fake: FakeOpenAI) -> None:
    planted = "sk-not-accepted-0123456789abcdef"
    error = await failure(fake, image("a cat"), api_key=planted)
    assert error.error_class is ErrorClass.AUTH
    assert "Incorrect API key provided" in error.message
    assert planted not in str(error) and planted[-4:] not in error.message
    assert KEY not in error.message


def test_redact_removes_the_key_and_masked_tokens() -> None:
    assert redact("key sk-abc123 used", "sk-abc123") == "key [redacted] used"
    assert redact("provided: sk-ab*****wxyz. See", "") == "provided: [redacted] See"


def test_retry_after_prefers_milliseconds_and_reads_http_dates() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert retry_after_seconds({"retry-after": date}, now=1445412480.0) == pytest.approx(10.0)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "-3"}) is None
    assert retry_after_seconds({}) is None
