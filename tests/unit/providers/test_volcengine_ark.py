"""The volcengine adapter's Ark half, through the official SDK against the fake Ark: requests as
Ark reads them, results, and the error-mapping table."""

from __future__ import annotations

import base64
import re

import httpx
import pytest

from genhub.providers.sdk import (
    AuthFailed,
    CallConfig,
    ContentRefused,
    EmptyResult,
    ErrorClass,
    Finished,
    InvalidParameter,
    JobFailed,
    Pending,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from genhub.providers.volcengine import VolcengineProvider
from tests.fakes.ark import FakeArk
from tests.fakes.jimeng import FakeJimeng
from tests.support.volcengine import (
    S,
    b64_png_size,
    call,
    fake_ark,
    fake_jimeng,
    marker,
    mp4_frames,
    png_size,
    settings_for,
    volc,
)
from tests.support.waiting import eventually

__all__ = ["fake_ark", "fake_jimeng", "volc"]

T2I = "doubao-seedream-3-0-t2i-250415"
SEEDREAM4 = "doubao-seedream-4-0-250828"
CHAT = "doubao-pro-4k"
SEEDANCE = "doubao-seedance-1-0-pro-250528"
REFUSED = ErrorClass.CONTENT_REFUSED
UNAVAILABLE = ErrorClass.PROVIDER_UNAVAILABLE
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a")).decode()


async def _fetch(url: str) -> bytes:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


async def test_seedream_url_result_is_a_real_png_with_the_call_parameters(
    volc: VolcengineProvider, fake_ark: FakeArk
) -> None:
    tag = marker()
    spec = S.ImageSpec(prompt=f"a fox {tag}", size="864x1152", seed=11, guidance_scale=3.5)
    spec.watermark = False
    finished = await volc.generate(call(volc, T2I, image=spec))
    (image,) = finished.result.images
    assert image.url.startswith(fake_ark.base_url)
    assert (image.mime_type, image.width, image.height) == ("image/png", 864, 1152)
    assert png_size(await _fetch(image.url)) == (864, 1152)
    assert finished.usage.images == 1
    (seen,) = fake_ark.matching("images", tag)
    assert finished.result.provider_request_id.startswith("0217")  # the server's x-request-id
    assert seen.detail["seed"] == 11
    assert seen.detail["guidance_scale"] == 3.5
    assert seen.detail["watermark"] is False
    assert seen.detail["response_format"] == "url"


async def test_seedream_b64_result(volc: VolcengineProvider) -> None:
    spec = S.ImageSpec(
        prompt=f"a hill {marker()}",
        size="1024x1024",
        response_format=S.IMAGE_RESPONSE_FORMAT_B64_JSON,
    )
    (image,) = (await volc.generate(call(volc, T2I, image=spec))).result.images
    assert not image.url
    assert b64_png_size(image.b64_data) == (1024, 1024)
    assert image.mime_type == "image/png"


async def test_seedream_4_takes_reference_images_and_3_0_refuses_them(
    volc: VolcengineProvider, fake_ark: FakeArk
) -> None:
    tag = marker()
    refs = [f"data:image/png;base64,{PIXEL}", "https://example.test/ref.png"]
    spec = S.ImageSpec(prompt=f"restyle {tag}", size="2048x2048", reference_images=refs)
    finished = await volc.generate(call(volc, SEEDREAM4, image=spec))
    assert len(finished.result.images) == 1
    assert fake_ark.matching("images", tag)[0].detail["images"] == 2

    with pytest.raises(InvalidParameter) as refused:
        await volc.generate(call(volc, T2I, image=S.ImageSpec(prompt="x", reference_images=refs)))
    assert not refused.value.retryable
    assert "does not support `image`" in refused.value.message
    assert refused.value.code == "InvalidParameter"


async def test_doubao_text_records_usage_and_parameters(
    volc: VolcengineProvider, fake_ark: FakeArk
) -> None:
    tag = marker()
    spec = S.TextSpec(prompt=f"say hello {tag}", max_tokens=4, temperature=0.3, top_p=0.9)
    finished = await volc.generate(call(volc, CHAT, text=spec))
    assert finished.result.text == "Fake Doubao answer to:"
    assert finished.result.finish_reason == "length"
    assert finished.usage.output_tokens == 4
    assert finished.usage.input_tokens == 3
    assert finished.usage.total_tokens == 7
    assert finished.result.provider_request_id.startswith("0217")
    (seen,) = fake_ark.matching("chat", tag)
    assert (seen.detail["max_tokens"], seen.detail["temperature"], seen.detail["top_p"]) == (
        4,
        0.3,
        0.9,
    )


async def test_messages_are_sent_as_a_conversation(volc: VolcengineProvider) -> None:
    messages = [
        S.ChatMessage(role="system", content="be brief"),
        S.ChatMessage(role="user", content=f"hi {marker()}"),
    ]
    finished = await volc.generate(call(volc, CHAT, text=S.TextSpec(messages=messages)))
    assert "be brief" in finished.result.text
    assert finished.result.finish_reason == "stop"


@pytest.mark.parametrize(
    ("directive", "kind", "error_class", "code"),
    [
        ("[status:400]", InvalidParameter, ErrorClass.INVALID_PARAMETER, "InvalidParameter"),
        (
            "[refuse]",
            ContentRefused,
            ErrorClass.CONTENT_REFUSED,
            "InputTextSensitiveContentDetected",
        ),
        ("[status:401]", AuthFailed, ErrorClass.AUTH, "AuthenticationError"),
        ("[status:403]", AuthFailed, ErrorClass.AUTH, "AccessDenied"),
        (
            "[status:403][code:AccountOverdueError]",
            QuotaExhausted,
            ErrorClass.QUOTA_EXHAUSTED,
            "AccountOverdueError",
        ),
        ("[status:404][code:ModelNotOpen]", AuthFailed, ErrorClass.AUTH, "ModelNotOpen"),
        (
            "[status:429][code:SetLimitExceeded]",
            QuotaExhausted,
            ErrorClass.QUOTA_EXHAUSTED,
            "SetLimitExceeded",
        ),
        (
            "[status:429][retry-after:7]",
            RateLimited,
            ErrorClass.RATE_LIMITED,
            "RateLimitExceeded.EndpointRPMExceeded",
        ),
        (
            "[status:500]",
            ProviderUnavailable,
            ErrorClass.PROVIDER_UNAVAILABLE,
            "InternalServiceError",
        ),
        (
            "[status:503]",
            ProviderUnavailable,
            ErrorClass.PROVIDER_UNAVAILABLE,
            "ServiceUnavailable",
        ),
    ],
)
async def test_ark_errors_map_to_error_classes_with_the_providers_words(
    volc: VolcengineProvider,
    fake_ark: FakeArk,
    directive: str,
    kind: type[ProviderError],
    error_class: ErrorClass,
    code: str,
) -> None:
    tag = marker()
    with pytest.raises(ProviderError) as raised:
        await volc.generate(call(volc, CHAT, text=S.TextSpec(prompt=f"{tag} {directive}")))
    error = raised.value
    assert type(error) is kind
    assert error.error_class is error_class
    assert error.code == code
    assert error.retryable is (
        error_class in (ErrorClass.RATE_LIMITED, ErrorClass.PROVIDER_UNAVAILABLE)
    )
    # The provider's own message and request id, which also appears in that message.
    found = re.search(r"Request id: (\w+)", error.message)
    assert found is not None
    assert error.request_id == found.group(1)
    assert error.retry_after == (7.0 if "retry-after" in directive else None)
    # SDK retries are off: exactly one request reached Ark.
    assert fake_ark.count("chat", tag) == 1


async def test_timeout_and_connection_errors_are_retryable(
    fake_ark: FakeArk, fake_jimeng: FakeJimeng
) -> None:
    provider = VolcengineProvider(settings_for(fake_ark, fake_jimeng, timeout_seconds=0.3))
    try:
        with pytest.raises(ProviderTimeout) as slow:
            await provider.generate(call(provider, CHAT, text=S.TextSpec(prompt="[sleep:1500]")))
        assert slow.value.retryable
    finally:
        await provider.aclose()
    closed = VolcengineProvider(
        settings_for(fake_ark, fake_jimeng, ark_base_url="http://127.0.0.1:9/api/v3")
    )
    try:
        with pytest.raises(ProviderUnavailable) as refused:
            await closed.generate(call(closed, CHAT, text=S.TextSpec(prompt="hello")))
        assert refused.value.code == "CONNECTION_ERROR"
    finally:
        await closed.aclose()


async def test_an_empty_200_is_an_empty_result(volc: VolcengineProvider) -> None:
    with pytest.raises(EmptyResult):
        await volc.generate(call(volc, T2I, image=S.ImageSpec(prompt=f"{marker()} [empty]")))
    with pytest.raises(EmptyResult) as text:
        await volc.generate(call(volc, CHAT, text=S.TextSpec(prompt=f"{marker()} [empty]")))
    assert text.value.retryable
    assert text.value.request_id


async def test_a_wrong_key_is_permanent_and_never_echoed(volc: VolcengineProvider) -> None:
    planted = "ark-planted-0123456789"
    config = CallConfig(source="request", api_key=planted)
    with pytest.raises(AuthFailed) as raised:
        await volc.generate(call(volc, CHAT, config=config, text=S.TextSpec(prompt="hi")))
    assert not raised.value.retryable
    assert planted not in raised.value.message
    assert planted not in repr(config)


async def test_no_key_at_all_is_a_clear_permanent_error(
    fake_ark: FakeArk, fake_jimeng: FakeJimeng
) -> None:
    from pydantic import SecretStr

    provider = VolcengineProvider(settings_for(fake_ark, fake_jimeng, ark_api_key=SecretStr("")))
    try:
        with pytest.raises(AuthFailed) as raised:
            await provider.generate(call(provider, CHAT, text=S.TextSpec(prompt="hi")))
        assert raised.value.code == "MISSING_API_KEY"
        assert "ARK_API_KEY" in raised.value.message
    finally:
        await provider.aclose()


async def test_clients_are_reused_per_key_and_request_keys_are_not_kept(
    volc: VolcengineProvider, fake_ark: FakeArk
) -> None:
    for _ in range(3):
        await volc.generate(call(volc, CHAT, text=S.TextSpec(prompt="again")))
    assert volc.ark.pool.cached == 1
    stored = CallConfig(source="stored", api_key=fake_ark.api_key, timeout_seconds=30)
    await volc.generate(call(volc, CHAT, config=stored, text=S.TextSpec(prompt="stored")))
    assert volc.ark.pool.cached == 2  # another timeout: another client, then reused
    await volc.generate(call(volc, CHAT, config=stored, text=S.TextSpec(prompt="stored")))
    assert volc.ark.pool.cached == 2
    per_request = CallConfig(source="request", api_key=fake_ark.api_key)
    await volc.generate(call(volc, CHAT, config=per_request, text=S.TextSpec(prompt="mine")))
    assert volc.ark.pool.cached == 2
    endpoint, cacheable = volc.ark.endpoint(call(volc, CHAT, text=S.TextSpec(prompt="x")))
    assert cacheable
    async with volc.ark.pool.lease(endpoint) as client:
        pool = client._client._transport._pool  # the httpx client the adapter built
        assert pool._keepalive_expiry == 20.0
        assert client.max_retries == 0


async def test_seedance_job_is_submitted_polled_and_finished_with_a_real_mp4(
    volc: VolcengineProvider, fake_ark: FakeArk
) -> None:
    tag = marker()
    spec = S.VideoSpec(
        prompt=f"waves {tag} [queued:50] [render:200]",
        aspect_ratio="9:16",
        duration_seconds=5,
        resolution="720p",
        seed=3,
    )
    job_call = call(volc, SEEDANCE, video=spec)
    submitted = await volc.submit(job_call)
    assert submitted.job_id.startswith("cgt-")
    (created,) = fake_ark.matching("create", tag)
    assert (created.detail["ratio"], created.detail["duration"], created.detail["seed"]) == (
        "9:16",
        5,
        3,
    )
    assert isinstance(await volc.poll(job_call, submitted.job_id), Pending)
    outcome = await eventually(
        lambda: volc.poll(job_call, submitted.job_id),
        lambda o: isinstance(o, Finished),
        what="video finished",
    )
    assert isinstance(outcome, Finished)
    video = outcome.result.video
    assert video.url.startswith(fake_ark.base_url)
    assert (video.mime_type, video.duration_seconds) == ("video/mp4", 5)
    width, height, frames = mp4_frames(await _fetch(video.url))
    assert (width, height) == (144, 256)
    assert frames >= 4
    assert outcome.usage.video_seconds == 5
    assert fake_ark.count("create", tag) == 1


async def test_seedance_cancel_deletes_a_queued_job_and_failures_map(
    volc: VolcengineProvider, fake_ark: FakeArk
) -> None:
    tag = marker()
    job_call = call(volc, SEEDANCE, video=S.VideoSpec(prompt=f"{tag} [queued:5000]"))
    submitted = await volc.submit(job_call)
    await volc.cancel(job_call, submitted.job_id)
    assert fake_ark.job(tag).status() == "cancelled"
    assert fake_ark.count("delete", tag, status=200) == 1
    with pytest.raises(JobFailed):
        await volc.poll(job_call, submitted.job_id)  # cancelled at Ark

    failing = call(volc, SEEDANCE, video=S.VideoSpec(prompt=f"{marker()} [queued:0] [jobfail]"))
    failed_job = await volc.submit(failing)
    outcome = await eventually(
        lambda: _poll_error(volc, failing, failed_job.job_id),
        lambda e: e is not None,
        what="job failure",
    )
    assert isinstance(outcome, JobFailed)
    assert outcome.job_failed
    with pytest.raises(JobFailed) as gone:
        await volc.poll(failing, "cgt-unknown")
    assert gone.value.code == "JOB_NOT_FOUND"


async def _poll_error(provider: VolcengineProvider, job_call: object, job_id: str) -> object:
    from genhub.providers.sdk import Call

    assert isinstance(job_call, Call)
    try:
        await provider.poll(job_call, job_id)
    except ProviderError as exc:
        return exc
    return None


async def test_a_negative_prompt_is_refused_not_ignored(volc: VolcengineProvider) -> None:
    spec = S.ImageSpec(prompt="x", negative_prompt="blur")
    with pytest.raises(InvalidParameter) as refused:
        await volc.generate(call(volc, T2I, image=spec))
    assert "negative" in refused.value.message
