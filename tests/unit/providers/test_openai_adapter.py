"""The OpenAI adapter through the official SDK against the OpenAI fake: what it sends for each
model, what it makes of the answers, how it pools clients, and the Sora job calls."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from PIL import Image

from genhub.providers.openai import OpenAIProvider, create_compatible_provider
from genhub.providers.openai.videos import SIZES
from genhub.providers.sdk import (
    CallConfig,
    ErrorClass,
    Finished,
    Pending,
    ProviderError,
    load_provider,
)
from tests.fakes.openai import FakeOpenAI
from tests.support.openai_env import ACME_KEY, MODELS, REQUEST_KEY, STORED_KEY, adapter, call, fake
from tests.support.tasks import S

__all__ = ["fake"]


@pytest.fixture
async def provider(fake: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    opened = adapter(fake.base_url)
    yield opened
    await opened.aclose()


def image_task(model: str, **spec: Any) -> S.Task:
    return S.Task(task_id="t1", provider="openai", model=model, image=S.ImageSpec(**spec))


async def finish(provider: OpenAIProvider, task: S.Task, job_id: str) -> Finished:
    """Poll a job until it finishes (the fake's hints keep this well under a second)."""
    for _ in range(100):
        outcome = await provider.poll(call(task), job_id)
        if isinstance(outcome, Finished):
            return outcome
        assert isinstance(outcome, Pending)
        assert 0 < outcome.poll_after <= 0.5  # the fake's openai-poll-after-ms hint is used
        await asyncio.sleep(outcome.poll_after)
    raise AssertionError("the job never finished")


async def test_dall_e_3_sends_size_quality_and_response_format_and_returns_the_url(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    task = image_task("dall-e-3", prompt="a fox", size="1792x1024", quality="hd")
    finished = await provider.generate(call(task))
    (seen,) = fake.requests("images")
    assert seen.body == {
        "model": "dall-e-3",
        "prompt": "a fox",
        "size": "1792x1024",
        "quality": "hd",
        "response_format": "url",
    }
    (result,) = finished.result.images
    assert result.url.startswith(fake.base_url.removesuffix("/v1") + "/media/")
    assert (result.width, result.height, result.mime_type) == (1792, 1024, "image/png")
    assert finished.result.provider_request_id == seen.request_id
    assert finished.usage.images == 1


async def test_gpt_image_never_sends_response_format_and_returns_base64(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    task = image_task(
        "gpt-image-1",
        prompt="a glass",
        size="1024x1536",
        background="transparent",
        output_format="png",
        n=2,
        response_format=S.IMAGE_RESPONSE_FORMAT_B64_JSON,
    )
    finished = await provider.generate(call(task))
    (seen,) = fake.requests("images")
    assert "response_format" not in seen.body
    assert seen.body["background"] == "transparent" and seen.body["n"] == 2
    assert len(finished.result.images) == 2
    picture = Image.open(io.BytesIO(base64.b64decode(finished.result.images[0].b64_data)))
    assert (picture.format, picture.size, picture.mode) == ("PNG", (1024, 1536), "RGBA")
    assert finished.usage.output_tokens == 2112 and finished.usage.images == 2


async def test_gpt_image_asked_for_a_url_gets_a_data_url(provider: OpenAIProvider) -> None:
    task = image_task("gpt-image-1", prompt="a cup", output_format="jpeg")
    (result,) = (await provider.generate(call(task))).result.images
    assert result.url.startswith("data:image/jpeg;base64,")
    assert result.mime_type == "image/jpeg" and (result.width, result.height) == (1024, 1024)


async def test_reference_images_are_refused_before_any_call(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    task = image_task("dall-e-3", prompt="a fox", reference_images=["https://example.com/a.png"])
    with pytest.raises(ProviderError) as raised:
        await provider.generate(call(task))
    assert raised.value.error_class is ErrorClass.INVALID_PARAMETER
    assert fake.counts["images"] == 0


async def test_chat_sends_max_completion_tokens_and_records_usage(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    task = S.Task(
        task_id="t2",
        provider="openai",
        model="gpt-4o-mini",
        text=S.TextSpec(
            messages=[
                S.ChatMessage(role="system", content="Be brief."),
                S.ChatMessage(role="user", content="Name three colours please"),
            ],
            max_tokens=4,
            temperature=0.2,
        ),
    )
    finished = await provider.generate(call(task))
    (seen,) = fake.requests("chat")
    assert seen.body["max_completion_tokens"] == 4 and "max_tokens" not in seen.body
    assert seen.body["temperature"] == 0.2 and len(seen.body["messages"]) == 2
    assert finished.result.text == "Fake answer to: Name"
    assert finished.result.finish_reason == "length"
    assert (finished.usage.input_tokens, finished.usage.output_tokens) == (6, 4)
    assert finished.usage.total_tokens == 10


async def test_stored_credentials_share_one_client_and_its_connections(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    stored = CallConfig(source="stored", api_key=STORED_KEY, api_base=fake.base_url)
    task = S.Task(task_id="t3", provider="openai", model="gpt-4o", text=S.TextSpec(prompt="hi"))
    for _ in range(3):
        await provider.generate(call(task, stored))
    seen = fake.requests("chat")
    assert {s.headers["authorization"] for s in seen} == {f"Bearer {STORED_KEY}"}
    assert len({s.client_port for s in seen}) == 1  # one kept-alive connection
    assert len(provider._clients) == 1


async def test_per_request_credentials_get_a_client_of_their_own_per_call(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    mine = CallConfig(source="request", api_key=REQUEST_KEY)
    task = S.Task(task_id="t4", provider="openai", model="gpt-4o", text=S.TextSpec(prompt="hi"))
    for _ in range(2):
        await provider.generate(call(task, mine))
    seen = fake.requests("chat")
    assert {s.headers["authorization"] for s in seen} == {f"Bearer {REQUEST_KEY}"}
    assert len({s.client_port for s in seen}) == 2  # closed after each call, never pooled
    assert len(provider._clients) == 0


async def test_idle_connections_expire_on_the_clients_side_first(fake: FakeOpenAI) -> None:
    provider = adapter(fake.base_url, keepalive_expiry_seconds=0.1)
    task = S.Task(task_id="t5", provider="openai", model="gpt-4o", text=S.TextSpec(prompt="hi"))
    try:
        await provider.generate(call(task))
        await asyncio.sleep(0.3)  # idle for longer than the client's keep-alive expiry
        await provider.generate(call(task))
    finally:
        await provider.aclose()
    first, second = fake.requests("chat")
    assert first.client_port != second.client_port


async def test_the_call_timeout_comes_from_the_provider_config(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    config = CallConfig(source="stored", api_key=STORED_KEY, timeout_seconds=0.3)
    task = S.Task(
        task_id="t6", provider="openai", model="gpt-4o", text=S.TextSpec(prompt="x [sleep:1500]")
    )
    with pytest.raises(ProviderError) as raised:
        await provider.generate(call(task, config))
    assert raised.value.error_class is ErrorClass.TIMEOUT


def test_every_catalogued_sora_aspect_ratio_and_resolution_has_a_size() -> None:
    for name in ("sora-2", "sora-2-pro"):
        model = MODELS[name]
        assert model.long_running
        for ratio in model.aspect_ratios:
            for resolution in model.resolutions:
                assert (ratio, resolution) in SIZES
    assert list(MODELS["dall-e-3"].sizes) == ["1024x1024", "1024x1792", "1792x1024"]
    assert list(MODELS["gpt-image-1"].sizes) == ["1024x1024", "1536x1024", "1024x1536", "auto"]


async def test_sora_job_is_created_polled_and_its_content_checked(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    task = S.Task(
        task_id="t7",
        provider="openai",
        model="sora-2-pro",
        video=S.VideoSpec(
            prompt="waves", aspect_ratio="9:16", resolution="1024p", duration_seconds=8
        ),
    )
    submitted = await provider.submit(call(task))
    (created,) = fake.requests("video.create")
    assert created.headers["content-type"].startswith("multipart/form-data")
    assert created.body == {
        "model": "sora-2-pro",
        "prompt": "waves",
        "seconds": "8",
        "size": "1024x1792",
    }
    finished = await finish(provider, task, submitted.job_id)
    video = finished.result.video
    assert video.url == f"{fake.base_url}/videos/{submitted.job_id}/content"
    assert (video.mime_type, video.duration_seconds) == ("video/mp4", 8)
    assert finished.usage.video_seconds == 8
    assert fake.counts["video.submitted"] == 1 and fake.counts["video.content"] == 1
    content = await fake.videos.content(submitted.job_id, "video", "r")
    with av.open(io.BytesIO(content.body)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (256, 448)  # a quarter of 1024x1792


@pytest.mark.parametrize(
    ("directive", "error_class", "job_failed"),
    [
        ("[video-fail]", ErrorClass.JOB_FAILED, True),
        ("[garbage]", ErrorClass.BAD_OUTPUT, False),
        ("[empty]", ErrorClass.EMPTY_RESULT, True),
        ("[broken]", ErrorClass.PROVIDER_UNAVAILABLE, False),
    ],
)
async def test_a_failed_or_broken_sora_job_is_a_retryable_error(
    provider: OpenAIProvider, directive: str, error_class: ErrorClass, job_failed: bool
) -> None:
    task = S.Task(
        task_id="t8",
        provider="openai",
        model="sora-2",
        video=S.VideoSpec(prompt=f"waves {directive}"),
    )
    submitted = await provider.submit(call(task))
    with pytest.raises(ProviderError) as raised:
        await finish(provider, task, submitted.job_id)
    assert raised.value.error_class is error_class
    assert raised.value.retryable and raised.value.job_failed is job_failed


async def test_unsupported_video_sizes_fail_before_any_call(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    task = S.Task(
        task_id="t9",
        provider="openai",
        model="sora-2",
        video=S.VideoSpec(prompt="w", aspect_ratio="1:1"),
    )
    with pytest.raises(ProviderError) as raised:
        await provider.submit(call(task))
    assert raised.value.code == "UNSUPPORTED_SIZE"
    assert fake.counts["video.create"] == 0


async def test_cancel_deletes_the_job_and_tolerates_one_already_gone(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    task = S.Task(task_id="t10", provider="openai", model="sora-2", video=S.VideoSpec(prompt="w"))
    submitted = await provider.submit(call(task))
    await provider.cancel(call(task), submitted.job_id)
    await provider.cancel(call(task), submitted.job_id)  # 404 now: nothing to do
    assert fake.counts["video.deleted"] == 1
    assert fake.videos.jobs[submitted.job_id].deleted


async def test_no_key_anywhere_is_a_configuration_error(fake: FakeOpenAI) -> None:
    provider = adapter(fake.base_url, api_key="")
    task = S.Task(task_id="t11", provider="openai", model="gpt-4o", text=S.TextSpec(prompt="hi"))
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.generate(call(task))
    finally:
        await provider.aclose()
    assert raised.value.code == "PROVIDER_NOT_CONFIGURED" and not raised.value.retryable
    assert fake.counts["chat"] == 0


async def test_a_compatible_provider_uses_only_its_stored_configuration(fake: FakeOpenAI) -> None:
    acme = load_provider("acme", compatible_api="openai")
    assert isinstance(acme, OpenAIProvider)
    assert (acme.name, acme.display_name, list(acme.catalogue())) == (
        "acme",
        "acme (OpenAI-compatible)",
        [],
    )
    task = S.Task(
        task_id="t12",
        provider="acme",
        model="acme-chat",
        text=S.TextSpec(prompt="hi", max_tokens=9),
    )
    try:
        with pytest.raises(ProviderError) as raised:
            await acme.generate(call(task))  # OPENAI_* are not used for other providers
        assert raised.value.code == "PROVIDER_NOT_CONFIGURED"
        stored = CallConfig(source="stored", api_key=ACME_KEY, api_base=fake.base_url)
        finished = await acme.generate(call(task, stored))
    finally:
        await acme.aclose()
    (seen,) = fake.requests("chat")
    assert seen.body["max_tokens"] == 9 and "max_completion_tokens" not in seen.body
    assert seen.headers["authorization"] == f"Bearer {ACME_KEY}"
    assert finished.result.text == "Fake answer to: hi"


def test_the_registry_explains_a_provider_it_cannot_load() -> None:
    with pytest.raises(LookupError, match="no provider named 'nosuch' is installed"):
        load_provider("nosuch")
    with pytest.raises(LookupError, match="compatible APIs installed: openai"):
        load_provider("nosuch", compatible_api="anthropic")
    assert create_compatible_provider("x").name == "x"


async def test_a_rotated_key_retires_the_old_client(fake: FakeOpenAI) -> None:
    provider = adapter(fake.base_url, max_clients=1)
    task = S.Task(task_id="t13", provider="openai", model="gpt-4o", text=S.TextSpec(prompt="hi"))
    try:
        await provider.generate(call(task, CallConfig(source="stored", api_key=STORED_KEY)))
        (old,) = [p.client for p in provider._clients._pooled.values()]
        await provider.generate(call(task, CallConfig(source="stored", api_key=REQUEST_KEY)))
        (new,) = [p.client for p in provider._clients._pooled.values()]
    finally:
        await provider.aclose()
    assert old is not new
    assert old.is_closed() and new.is_closed()  # evicted at once (idle), then closed by aclose
    used = [s.headers["authorization"] for s in fake.requests("chat")]
    assert used == [f"Bearer {STORED_KEY}", f"Bearer {REQUEST_KEY}"]
