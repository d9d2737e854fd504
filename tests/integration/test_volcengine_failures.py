"""How provider failures play out through the whole stack with the volcengine adapter against the
fakes: what is retried (and when), what fails at once with the provider's words, what is
dead-lettered, and that planted secrets never leak."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from genhub.common import topology
from genhub.v1 import task_service_pb2
from tests.fakes.ark import FakeArk
from tests.fakes.jimeng import FakeJimeng
from tests.support import infra
from tests.support.stack import Stack
from tests.support.tasks import S
from tests.support.volcengine import (
    create,
    fake_ark,
    fake_jimeng,
    finished,
    marker,
    volcengine_stack,
)
from tests.support.waiting import eventually

__all__ = ["fake_ark", "fake_jimeng"]

CHAT = "doubao-pro-4k"
ADAPTER_TIMEOUT = 2.0


@pytest.fixture(scope="module")
async def stack(
    infrastructure: None, fake_ark: FakeArk, fake_jimeng: FakeJimeng
) -> AsyncIterator[Stack]:
    """One stack; the adapter gives up on a call after two seconds."""
    async with volcengine_stack(
        fake_ark, fake_jimeng, adapter={"timeout_seconds": ADAPTER_TIMEOUT}
    ) as running:
        yield running


async def _text(stack: Stack, prompt: str, **fields: Any) -> S.Task:
    body = {"model": CHAT, "text": {"prompt": prompt}, **fields}
    return await finished(stack, "grpc", await create(stack, "grpc", "text", body))


async def _count(fake: FakeArk, op: str, tag: str) -> int:
    return fake.count(op, tag)


async def _dead(stack: Stack) -> int:
    return await infra.queue_depth(stack.vhost, topology.dead_queue("volcengine"))


async def test_429_is_retried_no_sooner_than_retry_after(stack: Stack, fake_ark: FakeArk) -> None:
    tag = marker()
    done = await _text(stack, f"busy {tag} [status:429:1] [retry-after:1.2]")
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.attempts == 2
    first, second = fake_ark.matching("chat", tag)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.2  # the backoff alone would be ~0.05 s


async def test_500_is_retried_then_succeeds(stack: Stack, fake_ark: FakeArk) -> None:
    tag = marker()
    done = await _text(stack, f"flaky {tag} [status:500:2]")
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.attempts == 3
    assert [c.status for c in fake_ark.matching("chat", tag)] == [500, 500, 200]
    assert not done.error.code


@pytest.mark.parametrize(
    ("directive", "code", "error_class", "words"),
    [
        ("[status:400]", "InvalidParameter", "invalid_parameter", "The parameter is invalid."),
        (
            "[refuse]",
            "InputTextSensitiveContentDetected",
            "content_refused",
            "may contain sensitive information",
        ),
        ("[status:401]", "AuthenticationError", "auth", "API key or AK/SK"),
    ],
)
async def test_permanent_refusals_fail_at_once_with_the_providers_message(
    stack: Stack, fake_ark: FakeArk, directive: str, code: str, error_class: str, words: str
) -> None:
    tag = marker()
    before = await _dead(stack)
    failed = await _text(stack, f"{tag} {directive}")
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.attempts == 1
    assert (failed.error.code, failed.error.error_class) == (code, error_class)
    assert not failed.error.retryable
    assert words in failed.error.message
    assert failed.error.provider_request_id in failed.error.message  # Ark's own request id
    assert fake_ark.count("chat", tag) == 1
    assert await _dead(stack) == before  # nothing to retry, nothing dead-lettered


async def test_a_timeout_is_retried(stack: Stack, fake_ark: FakeArk) -> None:
    tag = marker()
    done = await _text(stack, f"slow {tag} [sleep:{int(ADAPTER_TIMEOUT * 1000) + 1500}:1]")
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.attempts == 2
    # The first request is recorded when the fake answers it, after the client gave up.
    await eventually(
        lambda: _count(fake_ark, "chat", tag), lambda n: n == 2, what="both requests seen"
    )


async def test_exhausted_attempts_fail_and_dead_letter(stack: Stack, fake_ark: FakeArk) -> None:
    tag = marker()
    before = await _dead(stack)
    failed = await _text(stack, f"down {tag} [status:500]")
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.attempts == 3
    assert failed.error.retryable
    assert failed.error.error_class == "provider_unavailable"
    assert fake_ark.count("chat", tag) == 3
    await eventually(lambda: _dead(stack), lambda n: n == before + 1, what="dead-lettered")


async def test_an_empty_200_is_retried_and_never_a_success(stack: Stack, fake_ark: FakeArk) -> None:
    tag = marker()
    body = {"model": "doubao-seedream-3-0-t2i-250415", "image": {"prompt": f"{tag} [empty]"}}
    failed = await finished(stack, "rest", await create(stack, "rest", "image", body))
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.error.code == "EMPTY_RESULT"
    assert failed.attempts == 3
    assert not failed.result.images
    assert fake_ark.count("images", tag) == 3


async def test_a_jimeng_video_job_that_fails_is_resubmitted(
    stack: Stack, fake_jimeng: FakeJimeng
) -> None:
    tag = marker()
    body = {"model": "jimeng_vgfm_t2v_l20", "video": {"prompt": f"{tag} [queued:0] [jobfail]"}}
    failed = await finished(stack, "grpc", await create(stack, "grpc", "video", body))
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.error.code == "50500"
    assert failed.attempts == 3
    assert fake_jimeng.count("submit", tag) == 3  # the failed job is not polled forever


async def test_jimeng_wrong_secret_fails_permanently_and_no_planted_key_leaks(
    stack: Stack,
    fake_ark: FakeArk,
    fake_jimeng: FakeJimeng,
    mongo: AsyncMongoClient[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    planted_secret = "planted-jimeng-secret-7f3a9c"
    planted_key = "planted-ark-key-5d2e8b"
    fake_ark.accept(planted_key)
    tag = marker()
    jimeng = task_service_pb2.CreateImageTaskRequest(
        provider="volcengine",
        model="jimeng_high_aes_general_v21_L",
        image=S.ImageSpec(prompt=f"signed {tag}", size="512x512"),
    )
    jimeng.credentials.access_key_id = fake_jimeng.access_key
    jimeng.credentials.secret_access_key = planted_secret
    signed = (await stack.tasks.CreateImageTask(jimeng)).task
    # A planted (valid) Ark key on a task that keeps failing until it is dead-lettered: its
    # queue message is then kept, for the check below.
    ark = task_service_pb2.CreateTextTaskRequest(
        provider="volcengine", model=CHAT, text=S.TextSpec(prompt=f"keyed {tag} [status:500]")
    )
    ark.credentials.api_key = planted_key
    before = await _dead(stack)
    keyed = (await stack.tasks.CreateTextTask(ark)).task

    failed = await finished(stack, "grpc", signed.task_id)
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.attempts == 1
    assert (failed.error.code, failed.error.error_class) == ("SignatureDoesNotMatch", "auth")
    assert "signature we calculated does not match" in failed.error.message
    dead = await finished(stack, "rest", keyed.task_id)
    assert dead.status == S.TASK_STATUS_FAILED
    assert fake_ark.count("chat", tag) == 3  # the planted key was used, three times
    await eventually(lambda: _dead(stack), lambda n: n == before + 1, what="dead-lettered")

    bodies = await _queue_bodies(stack)
    documents = [
        json.dumps(d, default=str)
        async for d in mongo[stack.database]["tasks"].find(
            {"_id": {"$in": [signed.task_id, keyed.task_id]}}
        )
    ]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    api = str(failed) + str(dead)
    assert len(documents) == 2
    assert any(keyed.task_id in b for b in bodies)
    for secret in (planted_secret, planted_key):
        assert secret not in "".join(bodies)
        assert secret not in "".join(documents)
        assert secret not in logged
        assert secret not in api
    assert any(r.name.startswith("genhub.") for r in caplog.records)


async def _queue_bodies(stack: Stack) -> list[str]:
    """The bodies of the messages in the provider's dead-letter queue (left in place)."""
    connection = await aio_pika.connect(infra.amqp_url(stack.vhost))
    bodies: list[str] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.dead_queue("volcengine"))
        held = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            bodies.append(message.body.decode())
            held.append(message)
        for message in held:
            await message.nack(requeue=True)
    return bodies
