"""Media through the whole stack: the worker stores every output file in a fresh bucket on the
loopback versitygw, task documents keep references only, reads hand out presigned URLs that
serve the exact file until they expire, deletes remove the files (and the orphan sweep the ones
a delete could not), retention expires tasks, and list pages stay small. Real RabbitMQ,
FerretDB and Redis, per-test vhost, database and bucket."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import bson
import grpc
import httpx
import obstore
import pytest
from PIL import Image
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from genhub.media import MediaSettings
from genhub.media.__main__ import SweepSettings, sweep_once
from genhub.v1 import task_service_pb2
from tests.integration.media.conftest import URL_KEY, s3_media
from tests.support import buckets, infra, tcp_proxy
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, get, image_request, wait_status
from tests.support.waiting import eventually

Mongo = AsyncMongoClient[dict[str, Any]]


async def _objects(bucket: str) -> dict[str, bytes]:
    """Every object in ``bucket``, read straight from the object store."""
    store = buckets.s3_store(bucket)
    found: dict[str, bytes] = {}
    async for batch in obstore.list(store, None, chunk_size=500):
        for meta in batch:
            found[meta["path"]] = bytes(
                await (await obstore.get_async(store, meta["path"])).bytes_async()
            )
    return found


def _sweep_settings(media: MediaSettings, stack: Stack, **overrides: Any) -> SweepSettings:
    """What ``genhub-media sweep`` would read from the environment for this stack."""
    return SweepSettings(
        **(media.model_dump() | {"taskstore_addr": stack.taskstore_addr} | overrides)
    )


async def _image_task(stack: Stack, n: int = 1, size: str = "256x256") -> S.Task:
    request = image_request("a lighthouse at dawn")
    request.image.size, request.image.n = size, n
    created = (await stack.tasks.CreateImageTask(request)).task
    return await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED})


async def test_image_result_is_stored_checked_and_served_until_expiry(
    vhost: str, database: str, s3_bucket: str, mongo: Mongo
) -> None:
    media = s3_media(s3_bucket, media_url_ttl_seconds=3)
    async with start_stack(vhost, database, media=media) as stack:
        done = await _image_task(stack, n=2, size="512x512")
        objects = await _objects(s3_bucket)
        assert sorted(objects) == sorted(i.media.key for i in done.result.images)
        for image in done.result.images:
            data = objects[image.media.key]
            assert image.media.key == f"media/{done.task_id}/{image.media.media_id}"
            assert image.media.sha256 == hashlib.sha256(data).hexdigest()
            assert image.media.size_bytes == len(data)
            picture = Image.open(io.BytesIO(data))
            assert picture.format == "PNG" and image.mime_type == "image/png"
            assert (image.width, image.height) == picture.size == (512, 512)
            assert not image.b64_data

        raw = await mongo[database]["tasks"].find_one({"_id": done.task_id})
        assert raw is not None
        stored = raw["result"]["images"]
        assert [set(i) for i in stored] == [{"mime_type", "width", "height", "media"}] * 2
        assert "url_expire_time" not in stored[0]["media"]
        assert len(bson.encode(raw)) < 3000  # references, not ~200 KB of base64
        assert "data:" not in json.dumps(raw, default=str)

        fresh = await get(stack.tasks, done.task_id)
        url = fresh.result.images[0].url
        assert urlsplit(url).netloc == urlsplit(infra.S3_ENDPOINT).netloc
        assert "X-Amz-Signature" in url and len(url) < 600
        left = fresh.result.images[0].media.url_expire_time.ToSeconds() - fresh.update_time.seconds
        assert left > 0
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(url)
            assert answer.status_code == 200
            assert answer.content == objects[fresh.result.images[0].media.key]
            gone = await eventually(
                lambda: http.get(url),
                lambda r: r.status_code != 200,
                timeout=15,
                interval=0.25,
                what="the URL's expiry",
            )
            assert gone.status_code == 403


async def test_a_video_is_stored_and_watch_answers_carry_its_url(
    vhost: str, database: str, s3_bucket: str
) -> None:
    async with start_stack(vhost, database, media=s3_media(s3_bucket)) as stack:
        request = task_service_pb2.CreateVideoTaskRequest(
            provider="demo",
            model="demo-video",
            video=S.VideoSpec(
                prompt="waves", aspect_ratio="16:9", duration_seconds=2, resolution="240p"
            ),
        )
        created = (await stack.tasks.CreateVideoTask(request)).task
        watched = [
            update.task
            async for update in stack.tasks.WatchTask(
                task_service_pb2.WatchTaskRequest(task_id=created.task_id)
            )
        ]
        last = watched[-1]
        assert last.status == S.TASK_STATUS_SUCCEEDED
        video = last.result.video
        assert (video.mime_type, video.duration_seconds) == ("video/mp4", 2)
        assert abs(video.media.duration_seconds - 2.0) < 0.2
        data = (await _objects(s3_bucket))[video.media.key]
        assert video.media.sha256 == hashlib.sha256(data).hexdigest()
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(video.url)).content == data


async def test_delete_task_and_delete_image_remove_the_files(
    vhost: str, database: str, s3_bucket: str
) -> None:
    async with start_stack(vhost, database, media=s3_media(s3_bucket)) as stack:
        first = await _image_task(stack, n=2)
        second = await _image_task(stack)
        assert len(await _objects(s3_bucket)) == 3
        await stack.tasks.DeleteTask(task_service_pb2.DeleteTaskRequest(task_id=first.task_id))
        left = await _objects(s3_bucket)
        assert [k.split("/")[1] for k in left] == [second.task_id]
        await stack.tasks.DeleteImage(task_service_pb2.DeleteImageRequest(task_id=second.task_id))
        assert await _objects(s3_bucket) == {}


async def test_a_delete_while_the_store_is_down_leaves_an_orphan_the_sweep_removes(
    vhost: str, database: str, s3_bucket: str
) -> None:
    host, port = urlsplit(infra.S3_ENDPOINT).hostname or "", urlsplit(infra.S3_ENDPOINT).port
    async with tcp_proxy.proxy(host, port or 80) as down_later:
        media = s3_media(s3_bucket, endpoint=down_later.url)
        async with start_stack(vhost, database, media=media) as stack:
            kept = await _image_task(stack)
            doomed = await _image_task(stack)
            await down_later.stop()  # the object store is unreachable for the services
            await stack.tasks.DeleteTask(task_service_pb2.DeleteTaskRequest(task_id=doomed.task_id))
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await get(stack.tasks, doomed.task_id)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            assert doomed.result.images[0].media.key in await _objects(s3_bucket)

            # The sweep (genhub-media sweep, its composition) asks task-store about each owner.
            settings = _sweep_settings(s3_media(s3_bucket), stack, media_retention_days=0)
            report = await sweep_once(settings, grace=timedelta(0))
            assert (report.seen, report.orphaned, report.expired) == (2, 1, 0)
            assert list(await _objects(s3_bucket)) == [kept.result.images[0].media.key]
            assert (await get(stack.tasks, kept.task_id)).status == S.TASK_STATUS_SUCCEEDED


async def test_retention_expires_the_task_then_deletes_its_files(
    vhost: str, database: str, s3_bucket: str
) -> None:
    media = s3_media(s3_bucket)
    async with start_stack(vhost, database, media=media) as stack:
        done = await _image_task(stack)
        # Everything is older than a nanosecond's worth of days.
        settings = _sweep_settings(media, stack, media_retention_days=1e-14)
        report = await sweep_once(settings)
        assert (report.expired, report.tasks_expired, report.orphaned) == (1, 1, 0)
        assert await _objects(s3_bucket) == {}
        expired = await get(stack.tasks, done.task_id)
        assert expired.status == S.TASK_STATUS_EXPIRED
        # The references stay as a record; no URL is handed out for files that are gone.
        assert expired.result.images[0].media.sha256 == done.result.images[0].media.sha256
        assert expired.result.images[0].url == ""


async def test_a_page_of_20_image_tasks_is_under_20_kb_over_rest(
    vhost: str, database: str, s3_bucket: str
) -> None:
    # As `make run` has it: S3 with URL keys, so answers carry short gateway URLs.
    media = s3_media(s3_bucket, media_url_keys=SecretStr(URL_KEY))
    async with start_stack(vhost, database, media=media, rest=True) as stack:
        for _ in range(20):
            request = image_request("a castle on a hill at night, oil painting", user_id="alice")
            request.image.size = "256x256"
            await stack.tasks.CreateImageTask(request)

        async def page() -> httpx.Response:
            async with httpx.AsyncClient(base_url=stack.rest_url, timeout=10) as http:
                answer = await http.get(
                    "/api/v1/images", params={"userId": "alice", "pageSize": 20}
                )
                answer.raise_for_status()
                return answer

        answer = await eventually(
            page,
            lambda a: (
                len(a.json()["tasks"]) == 20
                and all(t["status"] == "TASK_STATUS_SUCCEEDED" for t in a.json()["tasks"])
            ),
            timeout=60,
            interval=0.5,
            what="20 succeeded image tasks",
        )
        tasks = answer.json()["tasks"]
        image = tasks[0]["result"]["images"][0]
        url = image["url"]
        assert url.startswith("/api/v1/media/") and len(url) < 160
        # Lists answer in the basic view (AIP-157): each file's URL, type and size, without its
        # stored-file record; the full view has the record.
        assert "media" not in image and image["mimeType"] == "image/png"
        assert answer.headers["content-encoding"] == "gzip"
        wire, raw = answer.num_bytes_downloaded, len(answer.content)
        # The page itself, as `curl` without --compressed gets it, and then what gzip leaves.
        assert raw < 16 * 1024 and wire < 5 * 1024, (raw, wire)
        print(f"page of 20 image tasks: {raw} bytes of JSON, {wire} bytes gzipped")
        async with httpx.AsyncClient(base_url=stack.rest_url, timeout=10) as http:
            full = await http.get(
                "/api/v1/images",
                params={"userId": "alice", "pageSize": 20, "view": "TASK_VIEW_FULL"},
            )
            png = await http.get(url)
        media = full.json()["tasks"][0]["result"]["images"][0]["media"]
        assert full.json()["tasks"][0]["taskId"] == tasks[0]["taskId"]
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert hashlib.sha256(png.content).hexdigest() == media["sha256"]
        assert int(media["sizeBytes"]) == len(png.content)
        over_grpc = await stack.tasks.ListImages(
            task_service_pb2.ListImagesRequest(user_id="alice", page_size=20)
        )
        assert all(
            not i.HasField("media") and i.url for t in over_grpc.tasks for i in t.result.images
        )
