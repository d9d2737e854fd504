"""OpenAI failures end to end: GenHub owns the retries (the SDK makes exactly one request per
attempt), honours Retry-After, fails permanent errors at once with the provider's message and
request id, dead-letters exhausted tasks, and never takes an empty answer for a success."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genhub.common import topology
from genhub.providers.sdk import ErrorClass
from genhub.v1 import task_pb2, task_service_pb2
from tests.fakes.openai import FakeOpenAI
from tests.fakes.openai_faults import QUOTA, Fault, refusal
from tests.support import infra
from tests.support.openai_env import adapter, fake
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, wait_status
from tests.support.waiting import eventually

__all__ = ["fake"]
TERMINAL = {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED}


@pytest.fixture
async def stack(vhost: str, database: str, fake: FakeOpenAI) -> AsyncIterator[Stack]:
    """An OpenAI worker with the test backoff, but a cap above the Retry-After tested here."""
    provider = adapter(fake.base_url)
    async with start_stack(vhost, database, provider=provider, backoff_cap_seconds=5.0) as running:
        yield running


async def chat(stack: Stack, prompt: str) -> task_pb2.Task:
    request = task_service_pb2.CreateTextTaskRequest(
        provider="openai", model="gpt-4o-mini", text=S.TextSpec(prompt=prompt)
    )
    task = (await stack.tasks.CreateTextTask(request)).task
    return await wait_status(stack.tasks, task.task_id, TERMINAL)


async def dead_letters(stack: Stack) -> int:
    return await infra.queue_depth(stack.vhost, topology.dead_queue("openai"))


async def test_429_with_retry_after_is_retried_no_sooner(stack: Stack, fake: FakeOpenAI) -> None:
    done = await chat(stack, "busy [fail:429:1] [retry-after:1]")
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.attempts == 2 and not done.error.code
    first, second = fake.requests("chat")
    assert second.at - first.at >= 1.0  # Retry-After: 1
    assert {s.headers["x-stainless-retry-count"] for s in (first, second)} == {"0"}


async def test_500_is_retried_then_succeeds(stack: Stack, fake: FakeOpenAI) -> None:
    done = await chat(stack, "flaky [fail:500:2]")
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.attempts == 3
    assert done.result.text == "Fake answer to: flaky [fail:500:2]"
    assert fake.counts["chat"] == 3  # one request per attempt: the SDK retries nothing
    assert await dead_letters(stack) == 0


@pytest.mark.parametrize(
    ("directive", "fault", "error_class"),
    [
        ("[fail:400]", Fault.of(400), ErrorClass.INVALID_PARAMETER),
        ("[refuse]", refusal("gpt-4o-mini"), ErrorClass.CONTENT_REFUSED),
        ("[fail:401]", Fault.of(401), ErrorClass.AUTH),
        ("[quota]", QUOTA, ErrorClass.QUOTA_EXHAUSTED),
    ],
)
async def test_permanent_errors_fail_at_once_with_the_providers_message(
    stack: Stack, fake: FakeOpenAI, directive: str, fault: Fault, error_class: ErrorClass
) -> None:
    done = await chat(stack, f"no luck {directive}")
    assert done.status == S.TASK_STATUS_FAILED
    assert done.attempts == 1 and fake.counts["chat"] == 1
    assert done.error.message == fault.message
    assert done.error.error_class == error_class.value
    assert not done.error.retryable
    assert done.error.provider_request_id == fake.requests("chat")[0].request_id
    assert await dead_letters(stack) == 0  # nothing to retry, nothing to inspect


async def test_a_timeout_is_retried(vhost: str, database: str, fake: FakeOpenAI) -> None:
    provider = adapter(fake.base_url, timeout_seconds=1.0)
    async with start_stack(vhost, database, provider=provider) as stack:
        done = await chat(stack, "slow start [sleep:2500:1]")
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert done.attempts == 2 and fake.counts["chat"] == 2


async def test_exhausted_attempts_fail_the_task_and_dead_letter_it(
    stack: Stack, fake: FakeOpenAI
) -> None:
    done = await chat(stack, "down [fail:503]")
    assert done.status == S.TASK_STATUS_FAILED
    assert done.attempts == 3 and fake.counts["chat"] == 3  # max_attempts in the test stack
    assert done.error.error_class == "provider_unavailable" and done.error.retryable
    assert done.error.message == Fault.of(503).message
    await eventually(lambda: dead_letters(stack), lambda n: n == 1, what="one dead letter")


async def test_an_empty_200_is_retried_and_never_a_success(stack: Stack, fake: FakeOpenAI) -> None:
    request = task_service_pb2.CreateImageTaskRequest(
        provider="openai", model="dall-e-3", image=S.ImageSpec(prompt="nothing [empty]")
    )
    task = (await stack.tasks.CreateImageTask(request)).task
    done = await wait_status(stack.tasks, task.task_id, TERMINAL)
    assert done.status == S.TASK_STATUS_FAILED
    assert done.error.code == "EMPTY_RESULT" and done.error.retryable
    assert done.attempts == 3 and fake.counts["images"] == 3
    assert not done.result.images


async def test_a_failed_sora_job_is_resubmitted(stack: Stack, fake: FakeOpenAI) -> None:
    request = task_service_pb2.CreateVideoTaskRequest(
        provider="openai", model="sora-2", video=S.VideoSpec(prompt="stormy sea [video-fail:1]")
    )
    task = (await stack.tasks.CreateVideoTask(request)).task
    done = await wait_status(stack.tasks, task.task_id, TERMINAL)
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert fake.counts["video.submitted"] == 2  # the failed job, then a new one
    assert done.provider_job_id in fake.videos.jobs
    assert not fake.videos.jobs[done.provider_job_id].fail


async def test_a_failed_poll_keeps_polling_the_same_job(stack: Stack, fake: FakeOpenAI) -> None:
    fake.inject("video.retrieve", Fault.of(502))
    request = task_service_pb2.CreateVideoTaskRequest(
        provider="openai", model="sora-2", video=S.VideoSpec(prompt="calm sea")
    )
    task = (await stack.tasks.CreateVideoTask(request)).task
    done = await wait_status(stack.tasks, task.task_id, TERMINAL)
    assert done.status == S.TASK_STATUS_SUCCEEDED, done.error
    assert fake.counts["video.submitted"] == 1  # the 502 was the poll's, not the job's
    assert done.attempts == 2
