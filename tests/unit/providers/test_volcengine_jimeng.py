"""The volcengine adapter's Jimeng half, through the official ``volcengine`` Visual SDK against the
fake Visual API: signed requests, jobs, results and the error-mapping table."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from volcengine.visual.VisualService import VisualService

from genhub.providers.sdk import (
    AuthFailed,
    CallConfig,
    ContentRefused,
    EmptyResult,
    ErrorClass,
    Finished,
    JobFailed,
    Pending,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
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
    settings_for,
    volc,
)
from tests.support.waiting import eventually

__all__ = ["fake_ark", "fake_jimeng", "volc"]

V21 = "jimeng_high_aes_general_v21_L"
T2V = "jimeng_vgfm_t2v_l20"


async def _finish(provider: VolcengineProvider, job_call: object, job_id: str) -> Finished:
    from genhub.providers.sdk import Call

    assert isinstance(job_call, Call)
    outcome = await eventually(
        lambda: provider.poll(job_call, job_id),
        lambda o: isinstance(o, Finished),
        what="Jimeng job done",
    )
    assert isinstance(outcome, Finished)
    return outcome


async def test_image_job_is_signed_submitted_and_read_back_as_base64(
    volc: VolcengineProvider, fake_jimeng: FakeJimeng
) -> None:
    tag = marker()
    spec = S.ImageSpec(
        prompt=f"一只猫 {tag}",
        size="512x384",
        seed=9,
        response_format=S.IMAGE_RESPONSE_FORMAT_B64_JSON,
    )
    job_call = call(volc, V21, image=spec)
    submitted = await volc.submit(job_call)
    (seen,) = fake_jimeng.matching("submit", tag)
    assert (seen.detail["width"], seen.detail["height"], seen.detail["seed"]) == (512, 384, 9)
    assert isinstance(await volc.poll(job_call, submitted.job_id), Pending)
    (image,) = (await _finish(volc, job_call, submitted.job_id)).result.images
    # Super-resolution is on by default: the 2.1 model answers twice the size.
    assert b64_png_size(image.b64_data) == (1024, 768)
    assert (image.mime_type, image.width, image.height) == ("image/png", 1024, 768)


async def test_image_job_with_urls(volc: VolcengineProvider, fake_jimeng: FakeJimeng) -> None:
    job_call = call(volc, V21, image=S.ImageSpec(prompt=f"hills {marker()}", size="512x512"))
    submitted = await volc.submit(job_call)
    finished = await _finish(volc, job_call, submitted.job_id)
    (image,) = finished.result.images
    assert image.url.startswith(fake_jimeng.base_url)
    assert (image.mime_type, image.width, image.height) == ("image/png", 1024, 1024)
    assert finished.result.provider_request_id


async def test_video_job_passes_aspect_ratio_and_seed(
    volc: VolcengineProvider, fake_jimeng: FakeJimeng
) -> None:
    tag = marker()
    spec = S.VideoSpec(prompt=f"rain {tag}", aspect_ratio="21:9", seed=5)
    job_call = call(volc, T2V, video=spec)
    submitted = await volc.submit(job_call)
    (seen,) = fake_jimeng.matching("submit", tag)
    assert (seen.detail["aspect_ratio"], seen.detail["seed"]) == ("21:9", 5)
    assert "frames" not in seen.detail  # S2.0 has one duration: nothing to choose
    video = (await _finish(volc, job_call, submitted.job_id)).result.video
    assert video.url.startswith(fake_jimeng.base_url)
    assert (video.mime_type, video.duration_seconds) == ("video/mp4", 5)
    assert fake_jimeng.media(video.url)[4:8] == b"ftyp"


async def test_a_wrong_secret_gets_the_providers_signature_error(
    volc: VolcengineProvider, fake_jimeng: FakeJimeng
) -> None:
    planted = "planted-secret-0123456789"
    config = CallConfig(
        source="request", access_key_id=fake_jimeng.access_key, secret_access_key=planted
    )
    job_call = call(volc, V21, config=config, image=S.ImageSpec(prompt="x"))
    with pytest.raises(AuthFailed) as raised:
        await volc.submit(job_call)
    assert raised.value.code == "SignatureDoesNotMatch"
    assert "signature we calculated does not match" in raised.value.message
    assert raised.value.request_id
    assert not raised.value.retryable
    assert planted not in raised.value.message
    assert volc.jimeng.pool.cached == 0  # per-request keys are never kept


@pytest.mark.parametrize(
    ("directive", "kind", "error_class", "code"),
    [
        ("[status:429][retry-after:3]", RateLimited, ErrorClass.RATE_LIMITED, "50429"),
        ("[status:429][code:50430]", RateLimited, ErrorClass.RATE_LIMITED, "50430"),
        ("[status:500]", ProviderUnavailable, ErrorClass.PROVIDER_UNAVAILABLE, "50500"),
        ("[refuse]", ContentRefused, ErrorClass.CONTENT_REFUSED, "50412"),
        ("[status:403]", AuthFailed, ErrorClass.AUTH, "50400"),
        ("[status:400]", ProviderError, ErrorClass.INVALID_PARAMETER, "50201"),
    ],
)
async def test_jimeng_errors_map_to_error_classes(
    volc: VolcengineProvider,
    fake_jimeng: FakeJimeng,
    directive: str,
    kind: type[ProviderError],
    error_class: ErrorClass,
    code: str,
) -> None:
    tag = marker()
    with pytest.raises(kind) as raised:
        await volc.submit(call(volc, V21, image=S.ImageSpec(prompt=f"{tag} {directive}")))
    error = raised.value
    assert error.error_class is error_class
    assert error.code == code
    assert error.request_id
    assert error.retry_after == (3.0 if "retry-after" in directive else None)
    assert fake_jimeng.count("submit", tag) == 1


async def test_job_failures(volc: VolcengineProvider) -> None:
    failing = call(volc, V21, image=S.ImageSpec(prompt=f"{marker()} [queued:0] [jobfail]"))
    submitted = await volc.submit(failing)

    async def poll_error() -> ProviderError | None:
        try:
            await volc.poll(failing, submitted.job_id)
        except ProviderError as exc:
            return exc
        return None

    error = await eventually(poll_error, lambda e: e is not None, what="job failure")
    assert isinstance(error, ProviderUnavailable)
    assert error.job_failed  # the job itself failed: a retry submits a new one
    with pytest.raises(JobFailed):
        await volc.poll(failing, "123")  # not_found
    empty = call(volc, V21, image=S.ImageSpec(prompt=f"{marker()} [queued:0] [empty]"))
    job = await volc.submit(empty)

    async def empty_error() -> ProviderError | None:
        try:
            await volc.poll(empty, job.job_id)
        except ProviderError as exc:
            return exc
        return None

    nothing = await eventually(empty_error, lambda e: e is not None, what="empty result")
    assert isinstance(nothing, EmptyResult)
    assert nothing.job_failed


async def test_timeouts_and_refused_connections_are_retryable(
    fake_ark: FakeArk, fake_jimeng: FakeJimeng
) -> None:
    slow = VolcengineProvider(settings_for(fake_ark, fake_jimeng, timeout_seconds=0.3))
    try:
        with pytest.raises(ProviderTimeout):
            await slow.submit(call(slow, V21, image=S.ImageSpec(prompt="[sleep:1500]")))
    finally:
        await slow.aclose()
    closed = VolcengineProvider(
        settings_for(fake_ark, fake_jimeng, visual_base_url="http://127.0.0.1:9")
    )
    try:
        with pytest.raises(ProviderUnavailable) as refused:
            await closed.submit(call(closed, V21, image=S.ImageSpec(prompt="x")))
        assert refused.value.code == "CONNECTION_ERROR"
    finally:
        await closed.aclose()


async def test_blocking_calls_run_on_their_own_threads_and_never_touch_the_singleton(
    volc: VolcengineProvider, fake_jimeng: FakeJimeng
) -> None:
    singleton = VisualService()
    host_before = singleton.service_info.host
    names: set[str] = set()
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    original = threading.current_thread().name
    running = asyncio.create_task(ticker())
    started = time.monotonic()
    calls = [call(volc, V21, image=S.ImageSpec(prompt=f"{marker()} [sleep:800]")) for _ in range(4)]
    results = await asyncio.gather(*(volc.submit(c) for c in calls))
    elapsed = time.monotonic() - started
    stop.set()
    await running
    names = {t.name for t in threading.enumerate() if t.name.startswith("jimeng")}
    assert len(results) == 4
    assert elapsed < 2.6  # four 0.8 s calls side by side on four threads (not 3.2 s in a row)
    assert ticks >= 10  # the event loop kept running meanwhile
    assert names and original not in names
    assert volc.jimeng.pool.cached == 1  # one client for the deployment's keys
    assert VisualService().service_info.host == host_before
    assert fake_jimeng.base_url.split("//")[1] not in host_before
