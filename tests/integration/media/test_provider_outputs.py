"""A provider whose result URLs answer an HTML page, a truncated PNG or a 404 fails the task
after its retries (each attempt a retryable BAD_OUTPUT), never succeeds, and leaves nothing in
the bucket; its good URLs are stored. The provider's own (loopback) base URL is what lets the
worker fetch from the fake CDN at all: without it the URL is refused for good."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import obstore
import openai
import pytest

from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import Call, CallConfig, Finished
from genhub.v1 import task_pb2, task_service_pb2
from tests.fakes.openai import FakeOpenAI
from tests.integration.media.conftest import Cdn, s3_media
from tests.support import buckets, media_files, openai_env
from tests.support.openai_env import KEY, KEYS
from tests.support.stack import start_stack
from tests.support.tasks import S, image_request, wait_status


class HiddenBaseProvider(DemoProvider):
    """The demo provider's catalogue, answering image tasks with ``<cdn>/<prompt>`` the way a
    real provider answers with URLs on its CDN; it does not report its base URL."""

    def __init__(self, cdn: str) -> None:
        super().__init__(DemoSettings())
        self._cdn = cdn

    async def generate(self, call: Call) -> Finished:
        """One image at the URL the prompt names."""
        url = f"{self._cdn}/{call.task.image.prompt}"
        return Finished(
            task_pb2.TaskResult(images=[task_pb2.GeneratedImage(url=url)]),
            task_pb2.Usage(images=1),
        )


class CdnProvider(HiddenBaseProvider):
    """The same, reporting the CDN (a fake on loopback) as its base URL, as real adapters
    report their configured endpoints (``genhub.dispatcher.media_hook.DeclaresBaseUrls``)."""

    def base_urls(self, config: CallConfig) -> Sequence[str]:
        """The provider's own endpoint."""
        return [self._cdn]


async def _keys(bucket: str) -> list[str]:
    store = buckets.s3_store(bucket)
    return [m["path"] async for batch in obstore.list(store, None) for m in batch]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("html", "MEDIA_INVALID"),  # an HTML page answered with 200 and image/png
        ("f/truncated.png", "MEDIA_INVALID"),  # a PNG cut short
        ("gone", "MEDIA_FETCH_FAILED"),  # 404
    ],
)
async def test_bad_result_urls_are_retryable_failures_not_successes(
    vhost: str, database: str, s3_bucket: str, cdn: Cdn, path: str, code: str
) -> None:
    cdn.files["truncated.png"] = media_files.image_bytes("PNG", (300, 200))[:-40]
    provider = CdnProvider(cdn.url)
    async with start_stack(vhost, database, provider=provider, media=s3_media(s3_bucket)) as stack:
        created = (await stack.tasks.CreateImageTask(image_request(path))).task
        done = await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_FAILED})
    assert done.attempts == 3  # every attempt ran (and was retried): dispatcher max_attempts
    assert (done.error.code, done.error.retryable) == (code, True)
    assert done.error.error_class == "bad_output"
    assert not done.HasField("result") or not done.result.images
    assert await _keys(s3_bucket) == []


async def test_a_good_result_url_on_the_provider_base_is_stored(
    vhost: str, database: str, s3_bucket: str, cdn: Cdn
) -> None:
    cdn.files["ok.jpg"] = media_files.image_bytes("JPEG", (320, 240))
    provider = CdnProvider(cdn.url)
    async with start_stack(vhost, database, provider=provider, media=s3_media(s3_bucket)) as stack:
        created = (await stack.tasks.CreateImageTask(image_request("hop/ok.jpg"))).task
        done = await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED})
    image = done.result.images[0]
    assert (image.mime_type, image.width, image.height) == ("image/jpeg", 320, 240)
    assert await _keys(s3_bucket) == [image.media.key]
    assert cdn.url not in image.url  # the provider's URL is gone from the result


async def test_a_local_url_off_the_provider_base_is_refused_for_good(
    vhost: str, database: str, s3_bucket: str, cdn: Cdn
) -> None:
    cdn.files["ok.png"] = media_files.image_bytes("PNG")
    provider = HiddenBaseProvider(cdn.url)
    media = s3_media(s3_bucket)
    assert not media.egress_allow
    async with start_stack(vhost, database, provider=provider, media=media) as stack:
        created = (await stack.tasks.CreateImageTask(image_request("f/ok.png"))).task
        done = await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_FAILED})
    assert (done.attempts, done.error.code, done.error.retryable) == (1, "MEDIA_URL_REFUSED", False)
    assert "loopback" in done.error.message
    assert await _keys(s3_bucket) == []


async def test_a_sora_video_is_stored_through_the_adapter_with_its_key(
    vhost: str, database: str, s3_bucket: str
) -> None:
    # Sora's content endpoint answers 401 to a plain download: the adapter streams the MP4 to
    # the media store with the account's key (`media_stream`), and the key goes nowhere else.
    fake = FakeOpenAI(api_keys=KEYS)
    await fake.start()
    try:
        media = s3_media(s3_bucket)
        provider = openai_env.adapter(fake.base_url)
        async with start_stack(vhost, database, provider=provider, media=media) as stack:
            request = task_service_pb2.CreateVideoTaskRequest(
                provider="openai",
                model="sora-2",
                video=S.VideoSpec(prompt="waves", aspect_ratio="16:9", duration_seconds=4),
            )
            created = (await stack.tasks.CreateVideoTask(request)).task
            done = await wait_status(
                stack.tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED}
            )
        assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
        assert done.attempts == 1 and fake.counts["video.submitted"] == 1
        video = done.result.video
        assert video.mime_type == "video/mp4" and video.media.size_bytes > 0
        assert await _keys(s3_bucket) == [video.media.key]
        async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url) as sdk:
            original = await (await sdk.videos.download_content(done.provider_job_id)).aread()
        assert video.media.sha256 == hashlib.sha256(original).hexdigest()
        assert fake.base_url not in video.url  # a stored copy, not the provider's endpoint
    finally:
        await fake.stop()
