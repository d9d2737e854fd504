"""create -> queued -> running -> succeeded through the public gRPC API, for every task type."""

from __future__ import annotations

import base64
import io

import av
from google.protobuf import duration_pb2
from PIL import Image

from genhub.v1 import task_pb2, task_service_pb2
from tests.support.stack import Stack
from tests.support.tasks import S, get, image_request, text_request, wait_status


async def test_image_task_produces_a_png_of_the_requested_size(stack: Stack) -> None:
    request = image_request("一只可爱的猫咪在花园里", user_id="u1")
    request.image.size = "512x512"
    request.image.n = 2
    created = (await stack.tasks.CreateImageTask(request)).task
    assert created.task_id and created.status in (S.TASK_STATUS_QUEUED, S.TASK_STATUS_RUNNING)
    assert created.type == S.TASK_TYPE_IMAGE and created.priority == S.PRIORITY_DEFAULT

    done = await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.attempts == 1
    assert len(done.result.images) == 2 and done.usage.images == 2
    url = done.result.images[0].url
    assert url.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert picture.format == "PNG" and picture.size == (512, 512)
    assert done.HasField("start_time") and done.HasField("finish_time")
    assert done.finish_time.ToNanoseconds() >= done.start_time.ToNanoseconds()


async def test_video_task_runs_as_a_submitted_and_polled_job(stack: Stack) -> None:
    request = task_service_pb2.CreateVideoTaskRequest(
        provider="demo",
        model="demo-video",
        video=S.VideoSpec(
            prompt="waves", aspect_ratio="16:9", duration_seconds=2, resolution="240p"
        ),
    )
    created = (await stack.tasks.CreateVideoTask(request)).task
    done = await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.provider_job_id.startswith("demo-")
    assert done.result.video.mime_type == "video/mp4" and done.usage.video_seconds == 2
    mp4 = base64.b64decode(done.result.video.url.split(",", 1)[1])
    with av.open(io.BytesIO(mp4), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (426, 240)
        assert len(list(container.decode(stream))) == 8


async def test_text_task_with_wait_answers_with_the_finished_task(stack: Stack) -> None:
    request = text_request("what is GenHub?", wait=duration_pb2.Duration(seconds=15))
    done = (await stack.tasks.CreateTextTask(request)).task
    assert done.status == S.TASK_STATUS_SUCCEEDED
    assert "what is GenHub?" in done.result.text and done.result.finish_reason == "stop"
    assert done.usage.output_tokens > 0


async def test_idempotency_key_returns_the_first_task(stack: Stack) -> None:
    first = (await stack.tasks.CreateTextTask(text_request(user_id="u", idempotency_key="k1"))).task
    again = (await stack.tasks.CreateTextTask(text_request(user_id="u", idempotency_key="k1"))).task
    other_user = (
        await stack.tasks.CreateTextTask(text_request(user_id="v", idempotency_key="k1"))
    ).task
    assert again.task_id == first.task_id
    assert other_user.task_id != first.task_id
    await wait_status(stack.tasks, first.task_id, {S.TASK_STATUS_SUCCEEDED})
    listed = await stack.tasks.ListTasks(task_service_pb2.ListTasksRequest(user_id="u"))
    assert [t.task_id for t in listed.tasks] == [first.task_id]


async def test_list_paginates_newest_first_and_filters(stack: Stack) -> None:
    created: list[task_pb2.Task] = []
    for i in range(4):
        created.append(
            (await stack.tasks.CreateImageTask(image_request(f"img {i}", user_id="lister"))).task
        )
        created.append(
            (await stack.tasks.CreateTextTask(text_request(f"txt {i}", user_id="lister"))).task
        )
    await stack.tasks.CreateTextTask(text_request("someone else's", user_id="other"))

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stack.tasks.ListTasks(
            task_service_pb2.ListTasksRequest(user_id="lister", page_size=3, page_token=token)
        )
        seen += [t.task_id for t in page.tasks]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == [t.task_id for t in reversed(created)]

    images = await stack.tasks.ListTasks(
        task_service_pb2.ListTasksRequest(user_id="lister", type=S.TASK_TYPE_IMAGE)
    )
    assert {t.task_id for t in images.tasks} == {t.task_id for t in created[::2]}

    for task in created:
        await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    done = await stack.tasks.ListTasks(
        task_service_pb2.ListTasksRequest(user_id="lister", status=S.TASK_STATUS_SUCCEEDED)
    )
    assert len(done.tasks) == 8


async def test_delete_removes_the_task(stack: Stack) -> None:
    import grpc
    import pytest

    task = (await stack.tasks.CreateTextTask(text_request())).task
    await stack.tasks.DeleteTask(task_service_pb2.DeleteTaskRequest(task_id=task.task_id))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await get(stack.tasks, task.task_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stack.tasks.DeleteTask(task_service_pb2.DeleteTaskRequest(task_id=task.task_id))
    assert again.value.code() == grpc.StatusCode.NOT_FOUND
