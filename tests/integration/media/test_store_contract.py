"""The media store contract, run on both backends (S3 on versitygw, a local folder behind the
gateway's signed route): exact bytes and hashes, expiring URLs, delete, list, bounded memory
for a large video, and broken provider answers as retryable failures."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest

from genhub.media import MediaStore, PermanentMediaError, RetryableMediaError
from tests.integration.media.conftest import Cdn
from tests.support import media_files
from tests.support.waiting import eventually


async def _read(store: MediaStore, media_id: str) -> bytes:
    return b"".join([chunk async for chunk in store.open(media_id)])


async def _one(data: bytes):  # type: ignore[no-untyped-def]
    yield data


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
async def test_image_round_trip(media_store: MediaStore, fmt: str, mime: str) -> None:
    data = media_files.image_bytes(fmt, (64, 48))
    ref = await media_store.put(_one(data), owner="task1", kind="image")
    assert (ref.size, ref.sha256, ref.mime) == (len(data), hashlib.sha256(data).hexdigest(), mime)
    assert (ref.width, ref.height) == (64, 48)
    assert ref.key.endswith(ref.media_id) and ref.owner == "task1"
    assert await _read(media_store, ref.media_id) == data


async def test_video_from_provider_url_with_duration(media_store: MediaStore, cdn: Cdn) -> None:
    data = media_files.mp4_bytes(seconds=2)
    cdn.files["v.mp4"] = data
    ref = await media_store.put_url(f"{cdn.url}/f/v.mp4", owner="task2", kind="video")
    assert (ref.mime, ref.size, ref.width, ref.height) == ("video/mp4", len(data), 160, 96)
    assert ref.duration == pytest.approx(2.0, abs=0.2)
    assert await _read(media_store, ref.media_id) == data


async def test_base64_and_data_url(media_store: MediaStore) -> None:
    data = media_files.image_bytes("PNG", (300, 200))
    text = base64.b64encode(data).decode()
    ref = await media_store.put_base64(text, owner="task3", kind="image")
    from_url = await media_store.put_url(f"data:image/png;base64,{text}", owner="task3")
    assert ref.sha256 == from_url.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.media_id != from_url.media_id


async def test_signed_url_serves_exact_file_then_expires(media_store: MediaStore) -> None:
    data = media_files.image_bytes("PNG")
    ref = await media_store.put(_one(data), owner="task4", kind="image")
    url = await media_store.url(ref.media_id, ttl_seconds=2)
    async with httpx.AsyncClient(timeout=5) as http:
        first = await http.get(url)
        assert first.status_code == 200
        assert first.content == data
        assert first.headers["content-type"].startswith("image/png")

        async def status() -> int:
            return (await http.get(url)).status_code

        assert await eventually(status, lambda s: s == 403, timeout=8, interval=0.25) == 403


async def test_delete_and_list(media_store: MediaStore) -> None:
    refs = [
        await media_store.put(_one(media_files.image_bytes("PNG")), owner=owner, kind="image")
        for owner in ("taskA", "taskA", "taskB")
    ]
    listed = {obj.key: obj.size for obj in [o async for o in media_store.list()]}
    assert set(listed) == {r.key for r in refs}
    assert all(listed[r.key] == r.size for r in refs)
    assert media_store.owner_of_key(refs[2].key) == "taskB"

    await media_store.delete(refs[2].media_id)
    await media_store.delete(refs[2].media_id)  # idempotent
    with pytest.raises(PermanentMediaError) as caught:
        await _read(media_store, refs[2].media_id)
    assert caught.value.code == "MEDIA_NOT_FOUND"
    assert await media_store.delete_owner("taskA") == 2
    assert [o async for o in media_store.list()] == []


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


async def test_large_video_is_streamed_in_bounded_memory(media_store: MediaStore, cdn: Cdn) -> None:
    # Reset the peak-RSS counter (Linux clear_refs "5"), then compare the peak to the start.
    _reset_peak_rss()
    before = _rss_kib("VmRSS")
    ref = await media_store.put_url(f"{cdn.url}/big.mp4", owner="task5", kind="video")
    peak_rise_mib = (_rss_kib("VmHWM") - before) / 1024
    assert ref.size == 50 * 1024 * 1024
    assert ref.mime == "video/mp4"
    assert peak_rise_mib < 20, f"RSS rose by {peak_rise_mib:.1f} MiB storing a 50 MiB video"
    digest = hashlib.sha256()
    async for chunk in media_store.open(ref.media_id):
        digest.update(chunk)
    assert digest.hexdigest() == ref.sha256


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("/html", "MEDIA_INVALID", "HTML page"),
        ("/f/truncated.png", "MEDIA_INVALID", "truncated"),
        ("/f/cut.mp4", "MEDIA_INVALID", "truncated video"),
        ("/gone", "MEDIA_FETCH_FAILED", "404"),
        ("/f/text.png", "MEDIA_INVALID", "unknown file type"),
    ],
)
async def test_broken_provider_answers_are_retryable(
    media_store: MediaStore, cdn: Cdn, path: str, code: str, words: str
) -> None:
    png = media_files.image_bytes("PNG", (200, 200))
    cdn.files["truncated.png"] = png[: len(png) - 30]
    video = media_files.mp4_bytes()
    cdn.files["cut.mp4"] = video[: len(video) // 2]
    cdn.files["text.png"] = b"plain words, not pixels"
    with pytest.raises(RetryableMediaError) as caught:
        await media_store.put_url(
            cdn.url + path, owner="task6", kind="image" if "png" in path else None
        )
    assert caught.value.code == code
    assert words in caught.value.message
    assert [o async for o in media_store.list()] == []  # nothing half-stored


async def test_wrong_kind_is_refused(media_store: MediaStore) -> None:
    with pytest.raises(RetryableMediaError, match="expected video, got image/png"):
        await media_store.put(_one(media_files.image_bytes("PNG")), owner="t7", kind="video")


async def test_redirect_followed_and_rechecked(media_store: MediaStore, cdn: Cdn) -> None:
    data = media_files.image_bytes("JPEG")
    cdn.files["a.jpg"] = data
    ref = await media_store.put_url(f"{cdn.url}/hop/a.jpg", owner="task8", kind="image")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    with pytest.raises(PermanentMediaError) as caught:
        await media_store.put_url(f"{cdn.url}/hop-private", owner="task8", kind="image")
    assert caught.value.code == "MEDIA_URL_REFUSED"
    assert "10.1.2.3" in caught.value.message


async def test_results_link_stored_media_and_keep_data_urls(media_store: MediaStore) -> None:
    from genhub.media import image_entry, link_result
    from genhub.v1 import task_pb2

    data = media_files.image_bytes("PNG")
    ref = await media_store.put(_one(data), owner="task9", kind="image")
    legacy = "data:image/png;base64," + base64.b64encode(data).decode()
    result = task_pb2.TaskResult(
        images=[image_entry(ref), task_pb2.GeneratedImage(url=legacy, mime_type="image/png")]
    )
    assert result.images[0].url == ""  # stored results hold the reference, not a URL or bytes
    await link_result(result, media_store, ttl_seconds=60)
    assert result.images[1].url == legacy  # existing data: URL results are served as before
    assert result.images[0].media.url_expire_time.seconds > 0
    assert (result.images[0].width, result.images[0].media.sha256) == (64, ref.sha256)
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(result.images[0].url)).content == data


async def test_sweep_removes_orphans_and_expired(media_store: MediaStore) -> None:
    from collections.abc import Collection
    from datetime import timedelta

    from genhub.media import sweep

    live = await media_store.put(_one(media_files.image_bytes("PNG")), owner="alive", kind="image")
    leftover = await media_store.put(
        _one(media_files.image_bytes("PNG")), owner="alive", kind="image"
    )
    gone = await media_store.put(
        _one(media_files.image_bytes("PNG")), owner="deleted", kind="image"
    )

    class Owners:
        """Task "alive" references its first file only; task "deleted" is gone."""

        expired: list[str] = []  # noqa: RUF012

        async def media_of(self, owner: str) -> Collection[str] | None:
            return {live.media_id} if owner == "alive" else None

        async def expire(self, owner: str) -> None:
            self.expired.append(owner)

    owners = Owners()
    young = await sweep(media_store, owners, retention=None)  # within the grace period
    assert (young.seen, young.orphaned) == (3, 0)
    report = await sweep(media_store, owners, retention=None, grace=timedelta(0))
    assert (report.orphaned, report.expired) == (2, 0)
    assert [o.key async for o in media_store.list()] == [live.key]
    assert gone.key != live.key != leftover.key
    expired = await sweep(media_store, owners, retention=timedelta(0))
    assert (expired.expired, expired.tasks_expired) == (1, 1)
    assert owners.expired == ["alive"]  # the task is told before its file goes
    assert [o async for o in media_store.list()] == []


async def test_media_route_errors_in_genhub_shape(media_store: MediaStore) -> None:
    ref = await media_store.put(_one(media_files.image_bytes("PNG")), owner="t10", kind="image")
    url = await media_store.url(ref.media_id, ttl_seconds=60)
    if not url.startswith("http://127.0.0.1") or "/api/v1/media/" not in url:
        assert "X-Amz-Signature" in url  # the S3 backend presigns; the route is not involved
        return
    async with httpx.AsyncClient(timeout=5) as http:
        forged = await http.get(url[:-4] + "AAAA")
        assert forged.status_code == 403
        assert forged.json()["code"] == 7  # PERMISSION_DENIED
        assert "signature" in forged.json()["message"]
        unsigned = await http.get(url.split("?")[0])
        assert unsigned.status_code == 403
        await media_store.delete(ref.media_id)
        missing = await http.get(url)
        assert missing.status_code == 404
        assert missing.json()["code"] == 5  # NOT_FOUND
