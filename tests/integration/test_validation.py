"""Every validation rule answers INVALID_ARGUMENT (or FAILED_PRECONDITION) naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from pymongo import AsyncMongoClient

from genhub.v1 import task_service_pb2
from tests.support.stack import Stack
from tests.support.tasks import S, error_reason, image_request, text_request, violations
from tests.support.waiting import eventually


def _video(**spec: Any) -> task_service_pb2.CreateVideoTaskRequest:
    values: dict[str, Any] = {
        "prompt": "waves",
        "aspect_ratio": "16:9",
        "duration_seconds": 2,
        "resolution": "240p",
    }
    return task_service_pb2.CreateVideoTaskRequest(
        provider="demo", model="demo-video", video=S.VideoSpec(**(values | spec))
    )


def _image(**spec: Any) -> task_service_pb2.CreateImageTaskRequest:
    values: dict[str, Any] = {"prompt": "a cat", "size": "256x256"}
    return image_request(image=S.ImageSpec(**(values | spec)))


def _text(**spec: Any) -> task_service_pb2.CreateTextTaskRequest:
    return text_request(text=S.TextSpec(**spec))


CASES: list[tuple[str, Any, str, str]] = [
    # (case, request, field named, words the description contains)
    ("missing provider", image_request(provider=""), "provider", "required"),
    ("missing model", image_request(model=""), "model", "required"),
    ("unknown provider", image_request(provider="nope"), "provider", "unknown provider"),
    ("unknown model", image_request(model="nope"), "model", "unknown model"),
    ("model of another type", image_request(model="demo-text"), "model", "text model"),
    (
        "missing spec",
        task_service_pb2.CreateImageTaskRequest(provider="demo", model="demo-image"),
        "image",
        "required",
    ),
    ("empty prompt", _image(prompt=""), "image.prompt", "required"),
    ("blank prompt", _image(prompt="   "), "image.prompt", "blank"),
    ("oversized prompt", _image(prompt="x" * 4001), "image.prompt", "at most 4000"),
    ("size not allowed", _image(size="333x333"), "image.size", "allowed"),
    ("too many images", _image(n=5), "image.n", "between 1 and 4"),
    ("bad guidance", _image(guidance_scale=99.0), "image.guidance_scale", "between"),
    (
        "reference image over http",
        _image(reference_images=["http://10.0.0.1/x.png"]),
        "image.reference_images[0]",
        "https",
    ),
    ("bad priority", image_request(priority=9), "priority", "PRIORITY_LOW"),
    ("wait too long", image_request(wait=duration_pb2.Duration(seconds=61)), "wait", "at most"),
    ("negative wait", image_request(wait=duration_pb2.Duration(seconds=-1)), "wait", "negative"),
    (
        "too many labels",
        image_request(labels={f"k{i}": "v" for i in range(33)}),
        "labels",
        "at most 32",
    ),
    (
        "long idempotency key",
        image_request(idempotency_key="k" * 129),
        "idempotency_key",
        "longer than",
    ),
    (
        "reference image with a broken address",
        _image(reference_images=["https://[x"]),
        "image.reference_images[0]",
        "https",
    ),
    ("label key with a NUL", image_request(labels={"a\x00b": "x"}), "labels", "letters"),
    ("label key starting with $", image_request(labels={"$where": "x"}), "labels", "letters"),
    ("video aspect ratio", _video(aspect_ratio="4:3"), "video.aspect_ratio", "allowed"),
    ("video duration", _video(duration_seconds=7), "video.duration_seconds", "allowed"),
    ("video resolution", _video(resolution="4k"), "video.resolution", "allowed"),
    (
        "text prompt and messages",
        _text(prompt="a", messages=[S.ChatMessage(role="user", content="b")]),
        "text.messages",
        "not both",
    ),
    ("text empty", _text(), "text.prompt", "required"),
    (
        "text bad role",
        _text(messages=[S.ChatMessage(role="robot", content="hi")]),
        "text.messages[0].role",
        "system, user or assistant",
    ),
    ("text max tokens", _text(prompt="hi", max_tokens=5000), "text.max_tokens", "at most 4096"),
    ("text temperature", _text(prompt="hi", temperature=3.0), "text.temperature", "between"),
    ("text top_p", _text(prompt="hi", top_p=0.0), "text.top_p", "greater than 0"),
]


async def _create(stack: Stack, request: Any) -> None:
    if isinstance(request, task_service_pb2.CreateImageTaskRequest):
        await stack.tasks.CreateImageTask(request)
    elif isinstance(request, task_service_pb2.CreateVideoTaskRequest):
        await stack.tasks.CreateVideoTask(request)
    else:
        await stack.tasks.CreateTextTask(request)


@pytest.mark.parametrize(("case", "request_", "field", "words"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_names_the_field(
    stack: Stack, case: str, request_: Any, field: str, words: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _create(stack, request_)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    found = violations(raised.value)
    assert field in found, f"{case}: {found}"
    assert words in found[field], f"{case}: {found[field]!r}"


async def test_every_bad_field_is_reported_at_once(stack: Stack) -> None:
    request = _image(prompt="", size="1x1", n=9)
    request.priority = 7  # type: ignore[assignment]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.tasks.CreateImageTask(request)
    assert set(violations(raised.value)) == {"image.prompt", "image.size", "image.n", "priority"}


async def test_list_and_get_reject_bad_arguments(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.tasks.ListTasks(task_service_pb2.ListTasksRequest(page_token="not-ours!"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in violations(raised.value)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.tasks.ListTasks(task_service_pb2.ListTasksRequest(page_size=-1))
    assert "page_size" in violations(raised.value)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.tasks.GetTask(task_service_pb2.GetTaskRequest())
    assert "task_id" in violations(raised.value)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="missing"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_disabled_provider_is_a_failed_precondition_with_a_hint(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # Disabled in the store, the way ProviderService.DisableProvider records it.
    await mongo[stack.database]["providers"].update_one(
        {"_id": "demo"}, {"$set": {"enabled": False}}
    )

    async def create() -> grpc.aio.AioRpcError | None:
        try:
            task = (await stack.tasks.CreateTextTask(text_request())).task
        except grpc.aio.AioRpcError as exc:
            return exc
        await stack.tasks.DeleteTask(task_service_pb2.DeleteTaskRequest(task_id=task.task_id))
        return None

    # The gateway's catalogue cache picks the change up within its TTL.
    error = await eventually(create, lambda e: e is not None, what="provider disabled")
    assert error is not None
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "PROVIDER_DISABLED"
    assert ":enable" in (error.details() or "")
