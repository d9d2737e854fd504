"""The worker's media hook over a real local-folder media store (no network): outputs become
stored references, media failures become the SDK's error classes, a failed attempt leaves no
files, and the provider's own base URLs widen the egress rules for its downloads only."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr

from genhub.dispatcher.hooks import Run
from genhub.dispatcher.media_hook import MediaHook, StorageUnavailable, provider_error
from genhub.media import MediaSettings, PermanentMediaError, RetryableMediaError
from genhub.media import _errors as codes
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import BadOutput, Call, CallConfig, ErrorClass, Finished, PermanentError
from genhub.v1 import provider_pb2, task_pb2
from tests.support import media_files

S = task_pb2


class EndpointProvider(DemoProvider):
    """A demo provider that reports a (local) base URL, as adapters with fakes do."""

    def base_urls(self, config: CallConfig) -> Sequence[str]:
        return ["http://10.9.8.7:8000/api/v3"]


@pytest.fixture
def settings(tmp_path: Path) -> MediaSettings:
    return MediaSettings(
        media_backend="local", media_local_dir=tmp_path, media_url_keys=SecretStr("k" * 40)
    )


def _run(kind: str = "image", config: CallConfig | None = None) -> Run:
    task = S.Task(task_id="01taskid", type=S.TASK_TYPE_IMAGE)
    if kind == "image":
        task.image.prompt = "p"
    else:
        task.text.prompt = "p"
    call = Call(task=task, model=provider_pb2.Model(), attempt=1, config=config or CallConfig())
    return Run("demo", task, "run", call)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_images_become_stored_references(settings: MediaSettings, tmp_path: Path) -> None:
    png, jpeg = media_files.image_bytes("PNG", (40, 30)), media_files.image_bytes("JPEG")
    result = S.TaskResult(
        images=[
            S.GeneratedImage(url="data:image/png;base64," + base64.b64encode(png).decode()),
            S.GeneratedImage(b64_data=base64.b64encode(jpeg).decode(), mime_type="image/jpeg"),
        ],
        provider_request_id="req-1",
    )
    hook = MediaHook(settings, DemoProvider(DemoSettings()))
    try:
        stored = await hook.on_output(_run(), Finished(result, S.Usage(images=2)))
    finally:
        await hook.aclose()
    first, second = stored.result.images
    assert (first.mime_type, first.width, first.height) == ("image/png", 40, 30)
    assert first.media.sha256 == hashlib.sha256(png).hexdigest()
    assert second.mime_type == "image/jpeg" and second.media.size_bytes == len(jpeg)
    assert not (first.url or first.b64_data or second.url or second.b64_data)
    assert stored.result.provider_request_id == "req-1" and stored.usage.images == 2
    assert [p.name for p in _files(tmp_path)] == sorted(
        [first.media.media_id, second.media.media_id]
    )


async def test_a_bad_file_fails_the_attempt_and_leaves_nothing(
    settings: MediaSettings, tmp_path: Path
) -> None:
    good = base64.b64encode(media_files.image_bytes("PNG")).decode()
    cut = base64.b64encode(media_files.image_bytes("PNG")[:-30]).decode()
    result = S.TaskResult(images=[S.GeneratedImage(b64_data=good), S.GeneratedImage(b64_data=cut)])
    hook = MediaHook(settings, DemoProvider(DemoSettings()))
    try:
        with pytest.raises(BadOutput) as failed:
            await hook.on_output(_run(), Finished(result, S.Usage()))
    finally:
        await hook.aclose()
    assert failed.value.code == codes.INVALID and failed.value.retryable
    assert _files(tmp_path) == []


async def test_text_outputs_pass_through(settings: MediaSettings) -> None:
    finished = Finished(S.TaskResult(text="hello"), S.Usage())
    hook = MediaHook(settings, DemoProvider(DemoSettings()))
    assert await hook.on_output(_run("text"), finished) is finished
    await hook.aclose()


def test_media_errors_map_to_the_sdk_classes() -> None:
    html = provider_error(RetryableMediaError("html", code=codes.INVALID))
    assert isinstance(html, BadOutput) and html.retryable and not html.provider_side
    missing = provider_error(RetryableMediaError("404", code=codes.FETCH_FAILED, retry_after=3))
    assert isinstance(missing, BadOutput) and missing.retry_after == 3
    store = provider_error(RetryableMediaError("s3", code=codes.STORE_UNAVAILABLE))
    assert isinstance(store, StorageUnavailable) and store.retryable
    assert store.error_class == ErrorClass.STORAGE_UNAVAILABLE and not store.provider_side
    refused = provider_error(PermanentMediaError("no", code=codes.URL_REFUSED))
    assert isinstance(refused, PermanentError) and not refused.retryable
    assert (refused.code, refused.error_class) == (codes.URL_REFUSED, ErrorClass.BAD_OUTPUT)


async def test_one_store_per_set_of_provider_base_urls(settings: MediaSettings) -> None:
    # Which downloads each store's rules allow is tested end to end with a loopback CDN
    # (tests/integration/media/test_provider_outputs.py).
    hook = MediaHook(settings, EndpointProvider(DemoSettings()))
    plain = hook.store_for(CallConfig())
    assert hook.store_for(CallConfig(api_key="other")) is plain
    configured = hook.store_for(CallConfig(api_base="http://fake-ark.test:9/api/v3"))
    assert configured is not plain
    assert hook.store_for(CallConfig(api_base="http://fake-ark.test:9/api/v3")) is configured
    await hook.aclose()
