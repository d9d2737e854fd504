"""Every volcengine model kind end to end through the gateway, over gRPC and over REST: the
worker runs the real adapter (official SDKs) against the fake Ark and Jimeng servers, with the
real RabbitMQ, FerretDB and Redis."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from genhub.v1 import task_service_pb2
from tests.fakes.ark import FakeArk
from tests.fakes.jimeng import FakeJimeng
from tests.support.stack import Stack
from tests.support.tasks import S, violations, wait_status
from tests.support.volcengine import (
    b64_png_size,
    create,
    fake_ark,
    fake_jimeng,
    finished,
    marker,
    mp4_frames,
    png_size,
    volcengine_stack,
)
from tests.support.waiting import eventually

__all__ = ["fake_ark", "fake_jimeng"]

TRANSPORTS = ["grpc", "rest"]
PIXEL_PNG = "data:image/png;base64," + base64.b64encode(bytes.fromhex("89504e47")).decode()


@pytest.fixture(scope="module")
async def stack(
    infrastructure: None, fake_ark: FakeArk, fake_jimeng: FakeJimeng
) -> AsyncIterator[Stack]:
    """One stack for the module's tasks."""
    async with volcengine_stack(fake_ark, fake_jimeng) as running:
        yield running


async def _get(url: str) -> bytes:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.content


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_seedream_image_by_url(stack: Stack, fake_ark: FakeArk, transport: str) -> None:
    tag = marker()
    body = {
        "model": "doubao-seedream-3-0-t2i-250415",
        "image": {
            "prompt": f"a lighthouse {tag}",
            "size": "1248x832",
            "seed": "5",
            "watermark": False,
        },
    }
    done = await finished(stack, transport, await create(stack, transport, "image", body))
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    (image,) = done.result.images
    assert (image.width, image.height, image.mime_type) == (1248, 832, "image/png")
    assert png_size(await _get(image.url)) == (1248, 832)
    assert done.usage.images == 1
    assert done.result.provider_request_id
    (seen,) = fake_ark.matching("images", tag)
    assert (seen.detail["seed"], seen.detail["watermark"]) == (5, False)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_seedream_image_as_base64(stack: Stack, transport: str) -> None:
    body = {
        "model": "doubao-seedream-3-0-t2i-250415",
        "image": {
            "prompt": f"a meadow {marker()}",
            "size": "1024x1024",
            "responseFormat": "IMAGE_RESPONSE_FORMAT_B64_JSON",
        },
    }
    done = await finished(stack, transport, await create(stack, transport, "image", body))
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    (image,) = done.result.images
    assert not image.url
    assert b64_png_size(image.b64_data) == (1024, 1024)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_seedream_4_with_a_reference_image(
    stack: Stack, fake_ark: FakeArk, transport: str
) -> None:
    tag = marker()
    body = {
        "model": "doubao-seedream-4-0-250828",
        "image": {"prompt": f"restyle {tag}", "size": "2048x2048", "referenceImages": [PIXEL_PNG]},
    }
    done = await finished(stack, transport, await create(stack, transport, "image", body))
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert (done.result.images[0].width, done.result.images[0].height) == (2048, 2048)
    assert fake_ark.matching("images", tag)[0].detail["images"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_doubao_text_with_usage(stack: Stack, fake_ark: FakeArk, transport: str) -> None:
    tag = marker()
    body = {
        "model": "doubao-pro-4k",
        "text": {"prompt": f"Say hello {tag}", "maxTokens": 100, "temperature": 0.2},
    }
    done = await finished(stack, transport, await create(stack, transport, "text", body))
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.result.text == f"Fake Doubao answer to: Say hello {tag}"
    assert done.result.finish_reason == "stop"
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens) == (
        3,
        7,
        10,
    )
    assert done.result.provider_request_id.startswith("0217")
    assert fake_ark.matching("chat", tag)[0].detail["temperature"] == 0.2


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_seedance_video_is_polled_to_completion(
    stack: Stack, fake_ark: FakeArk, transport: str
) -> None:
    tag = marker()
    body = {
        "model": "doubao-seedance-1-0-pro-250528",
        "video": {
            "prompt": f"waves {tag} [queued:300] [render:2000]",
            "aspectRatio": "16:9",
            "durationSeconds": 5,
            "resolution": "720p",
        },
    }
    done = await finished(stack, transport, await create(stack, transport, "video", body))
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.provider_job_id == fake_ark.job(tag).id
    assert done.result.video.duration_seconds == 5
    assert mp4_frames(await _get(done.result.video.url))[:2] == (256, 144)
    assert fake_ark.count("create", tag) == 1
    # Polled while queued or running, then once more when done.
    seen = [c.detail["job_status"] for c in fake_ark.matching("get", tag)]
    assert {"queued", "running"} & set(seen[:-1]), seen
    assert seen[-1] == "succeeded"
    assert done.attempts == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_jimeng_image(stack: Stack, fake_jimeng: FakeJimeng, transport: str) -> None:
    tag = marker()
    body = {
        "model": "jimeng_high_aes_general_v21_L",
        "image": {"prompt": f"一只可爱的猫 {tag}", "size": "384x512"},
    }
    done = await finished(stack, transport, await create(stack, transport, "image", body))
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    (image,) = done.result.images
    assert png_size(await _get(image.url)) == (768, 1024)  # 2x: super-resolution
    assert done.provider_job_id == fake_jimeng.job(tag).id
    assert fake_jimeng.count("submit", tag) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_jimeng_video(stack: Stack, fake_jimeng: FakeJimeng, transport: str) -> None:
    tag = marker()
    body = {
        "model": "jimeng_vgfm_t2v_l20",
        "video": {"prompt": f"city lights {tag}", "aspectRatio": "9:16", "seed": "7"},
    }
    done = await finished(stack, transport, await create(stack, transport, "video", body))
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert mp4_frames(await _get(done.result.video.url))[:2] == (144, 256)
    assert done.result.video.duration_seconds == 5
    (seen,) = fake_jimeng.matching("submit", tag)
    assert (seen.detail["aspect_ratio"], seen.detail["seed"]) == ("9:16", 7)


async def test_a_size_the_model_does_not_take_lists_the_sizes_it_does(stack: Stack) -> None:
    body = {
        "provider": "volcengine",
        "model": "doubao-seedream-3-0-t2i-250415",
        "image": {"prompt": "x", "size": "1024x768"},
    }
    async with httpx.AsyncClient(base_url=stack.rest_url) as http:
        response = await http.post("/api/v1/ai/image/task", json=body)
    assert response.status_code == 400
    found = {
        v["field"]: v["description"]
        for d in response.json()["details"]
        for v in d.get("fieldViolations", [])
    }
    sizes = "1024x1024, 864x1152, 1152x864, 1280x720, 720x1280, 832x1248, 1248x832, 1512x648"
    assert sizes in found["image.size"]
    request = task_service_pb2.CreateImageTaskRequest(
        provider="volcengine",
        model="jimeng_high_aes_general_v21_L",
        image=S.ImageSpec(prompt="x", size="1024x1024"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.tasks.CreateImageTask(request)
    assert (
        "512x512, 512x384, 384x512, 512x341, 341x512, 512x288, 288x512"
        in (violations(raised.value)["image.size"])
    )


async def test_cancel_during_a_video_job_deletes_it_at_ark(stack: Stack, fake_ark: FakeArk) -> None:
    tag = marker()
    body = {
        "model": "doubao-seedance-1-0-pro-250528",
        "video": {"prompt": f"a long queue {tag} [queued:30000]", "durationSeconds": 5},
    }
    task_id = await create(stack, "grpc", "video", body)
    running = await wait_status(stack.tasks, task_id, {S.TASK_STATUS_RUNNING})
    await eventually(lambda: _job_id(stack, task_id), bool, what="provider job id stored")
    await stack.tasks.CancelTask(task_service_pb2.CancelTaskRequest(task_id=task_id))
    await eventually(lambda: _count(fake_ark, tag), lambda n: n == 1, what="job deleted at Ark")
    assert fake_ark.job(tag).status() == "cancelled"
    cancelled = await wait_status(stack.tasks, task_id, {S.TASK_STATUS_CANCELLED})
    assert cancelled.status == S.TASK_STATUS_CANCELLED
    assert running.attempts == 1
    assert fake_ark.count("create", tag) == 1


async def _job_id(stack: Stack, task_id: str) -> str:
    task = await stack.store.get(task_id)
    return task.provider_job_id


async def _count(fake: FakeArk, tag: str) -> int:
    return fake.count("delete", tag, status=200)
