"""OpenAI tasks end to end through the gateway, over REST and gRPC: the worker runs the OpenAI
adapter, which calls the OpenAI fake through the official SDK (real RabbitMQ, FerretDB, Redis)."""

from __future__ import annotations

import base64
import io
from typing import Any

import av
import httpx
import openai
from PIL import Image

from genhub.v1 import task_pb2, task_service_pb2
from tests.fakes.openai import FakeOpenAI
from tests.support.openai_env import KEY, fake, openai_stack
from tests.support.rest import client
from tests.support.stack import Stack
from tests.support.tasks import S, wait_status
from tests.support.waiting import eventually

__all__ = ["fake", "openai_stack"]
TERMINAL = {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELLED}


async def rest_create(stack: Stack, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a create with ``wait`` and return the finished task as JSON."""
    async with client(stack) as http:
        answer = await http.post(f"/api/v1/ai/{kind}/task", json=body | {"wait": "30s"})
    assert answer.status_code == 202, answer.text
    task: dict[str, Any] = answer.json()
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    return task


async def test_dall_e_3_image_with_a_url_over_grpc(openai_stack: Stack, fake: FakeOpenAI) -> None:
    request = task_service_pb2.CreateImageTaskRequest(
        provider="openai",
        model="dall-e-3",
        image=S.ImageSpec(prompt="a lighthouse at dawn", size="1024x1792", quality="hd"),
    )
    task = (await openai_stack.tasks.CreateImageTask(request)).task
    done = await wait_status(openai_stack.tasks, task.task_id, TERMINAL)
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    (seen,) = fake.requests("images")
    assert seen.body["quality"] == "hd" and seen.body["response_format"] == "url"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    (image,) = done.result.images
    assert done.result.provider_request_id == seen.request_id
    async with httpx.AsyncClient() as http:
        fetched = await http.get(image.url)
    picture = Image.open(io.BytesIO(fetched.content))
    assert (picture.format, picture.size) == ("PNG", (1024, 1792))
    assert done.usage.images == 1


async def test_gpt_image_1_base64_image_over_rest(openai_stack: Stack, fake: FakeOpenAI) -> None:
    task = await rest_create(
        openai_stack,
        "image",
        {
            "provider": "openai",
            "model": "gpt-image-1",
            "image": {
                "prompt": "a paper crane",
                "size": "1536x1024",
                "quality": "low",
                "background": "transparent",
                "outputFormat": "webp",
                "responseFormat": "IMAGE_RESPONSE_FORMAT_B64_JSON",
            },
        },
    )
    (seen,) = fake.requests("images")
    assert "response_format" not in seen.body
    assert (seen.body["quality"], seen.body["output_format"]) == ("low", "webp")
    (image,) = task["result"]["images"]
    assert image["mimeType"] == "image/webp"
    picture = Image.open(io.BytesIO(base64.b64decode(image["b64Data"])))
    assert (picture.format, picture.size, picture.mode) == ("WEBP", (1536, 1024), "RGBA")
    assert task["usage"]["outputTokens"] == "1056"  # int64 is a string in proto3 JSON


async def test_an_image_option_the_model_does_not_take_is_a_400_naming_it(
    openai_stack: Stack, fake: FakeOpenAI
) -> None:
    async with client(openai_stack) as http:
        answer = await http.post(
            "/api/v1/ai/image/task",
            json={
                "provider": "openai",
                "model": "dall-e-3",
                "image": {"prompt": "a fox", "quality": "ultra", "size": "512x512"},
            },
        )
    assert answer.status_code == 400
    fields = {
        v["field"]: v["description"]
        for detail in answer.json()["details"]
        for v in detail.get("fieldViolations", [])
    }
    assert "standard, hd" in fields["image.quality"]
    assert "1024x1024, 1024x1792, 1792x1024" in fields["image.size"]
    assert fake.counts["images"] == 0


async def test_chat_with_usage_over_grpc_and_rest(openai_stack: Stack, fake: FakeOpenAI) -> None:
    request = task_service_pb2.CreateTextTaskRequest(
        provider="openai",
        model="gpt-4o-mini",
        text=S.TextSpec(prompt="Say hello to the team", max_tokens=64),
    )
    task = (await openai_stack.tasks.CreateTextTask(request)).task
    done = await wait_status(openai_stack.tasks, task.task_id, TERMINAL)
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.result.text == "Fake answer to: Say hello to the team"
    assert done.result.finish_reason == "stop"
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens) == (
        5,
        8,
        13,
    )
    assert fake.requests("chat")[0].body["max_completion_tokens"] == 64

    over_rest = await rest_create(
        openai_stack,
        "text",
        {"provider": "openai", "model": "gpt-4.1", "text": {"prompt": "Count to three"}},
    )
    assert over_rest["result"]["text"] == "Fake answer to: Count to three"
    assert over_rest["usage"]["totalTokens"] == "9"


async def _video_task(stack: Stack, over_rest: bool, prompt: str) -> task_pb2.Task:
    if over_rest:
        async with client(stack) as http:
            answer = await http.post(
                "/api/v1/ai/video/task",
                json={
                    "provider": "openai",
                    "model": "sora-2",
                    "video": {"prompt": prompt, "aspectRatio": "16:9", "durationSeconds": 4},
                },
            )
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["taskId"]
    else:
        request = task_service_pb2.CreateVideoTaskRequest(
            provider="openai",
            model="sora-2",
            video=S.VideoSpec(prompt=prompt, aspect_ratio="9:16", duration_seconds=8),
        )
        task_id = (await stack.tasks.CreateVideoTask(request)).task.task_id
    return await wait_status(stack.tasks, task_id, TERMINAL)


async def test_sora_video_submitted_polled_and_completed_over_rest_and_grpc(
    openai_stack: Stack, fake: FakeOpenAI
) -> None:
    for over_rest, size, seconds in ((True, "1280x720", 4), (False, "720x1280", 8)):
        done = await _video_task(openai_stack, over_rest, f"waves, rest={over_rest}")
        assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
        job = fake.videos.jobs[done.provider_job_id]
        assert (job.size, job.seconds) == (size, str(seconds))
        assert done.result.video.url == f"{fake.base_url}/videos/{job.id}/content"
        assert done.result.video.duration_seconds == seconds
        assert done.usage.video_seconds == seconds
    assert fake.counts["video.submitted"] == 2  # one job per task, never resubmitted
    assert fake.counts["video.retrieve"] >= 2
    # The recorded URL is the content endpoint: the SDK, with the key, downloads a real MP4.
    async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0) as sdk:
        content = await sdk.videos.download_content(done.provider_job_id)
        data = await content.aread()
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (180, 320)  # a quarter of 720x1280
        assert len(list(container.decode(stream))) == 16  # 8 s at the fake's 2 fps


async def test_cancelling_a_running_sora_job_deletes_it_at_the_provider(
    openai_stack: Stack, fake: FakeOpenAI
) -> None:
    fake.videos.render_seconds = 60
    request = task_service_pb2.CreateVideoTaskRequest(
        provider="openai", model="sora-2", video=S.VideoSpec(prompt="a very long take")
    )
    task = (await openai_stack.tasks.CreateVideoTask(request)).task
    running = await eventually(
        lambda: openai_stack.tasks.GetTask(task_service_pb2.GetTaskRequest(task_id=task.task_id)),
        lambda r: bool(r.task.provider_job_id),
        what="the provider job id recorded",
    )
    job_id = running.task.provider_job_id
    await openai_stack.tasks.CancelTask(task_service_pb2.CancelTaskRequest(task_id=task.task_id))
    await eventually(
        lambda: _count(fake, "video.deleted"), lambda n: n == 1, what="the job deleted"
    )
    assert fake.videos.jobs[job_id].deleted
    cancelled = await wait_status(openai_stack.tasks, task.task_id, {S.TASK_STATUS_CANCELLED})
    assert not cancelled.result.video.url
    assert fake.counts["video.submitted"] == 1


async def _count(fake: FakeOpenAI, name: str) -> int:
    return fake.counts[name]


async def test_a_model_released_later_is_added_through_the_catalogue_api(
    openai_stack: Stack, fake: FakeOpenAI
) -> None:
    async with client(openai_stack) as http:
        added = await http.put(
            "/api/v1/providers/openai/models/gpt-image-1.5",
            json={
                "displayName": "GPT Image 2",
                "type": "TASK_TYPE_IMAGE",
                "sizes": ["1024x1024", "auto"],
                "qualities": ["low", "high"],
                "outputFormats": ["png", "jpeg"],
            },
        )
        assert added.status_code == 200, added.text
        refused = await http.post(
            "/api/v1/ai/image/task",
            json={
                "provider": "openai",
                "model": "gpt-image-1.5",
                "image": {"prompt": "a kite", "quality": "medium"},
            },
        )
        assert refused.status_code == 400 and "low, high" in refused.text
    task = await rest_create(
        openai_stack,
        "image",
        {
            "provider": "openai",
            "model": "gpt-image-1.5",
            "image": {
                "prompt": "a kite",
                "size": "auto",
                "quality": "high",
                "outputFormat": "jpeg",
            },
        },
    )
    (seen,) = fake.requests("images")
    assert seen.body["model"] == "gpt-image-1.5" and "response_format" not in seen.body
    (image,) = task["result"]["images"]
    assert image["url"].startswith("data:image/jpeg;base64,")
