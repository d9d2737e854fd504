"""Planted OpenAI keys (deployment, stored through the config API, per-request, and a wrong one
the provider rejects) never appear in logs, task documents, queue bodies, API answers or error
messages, while every one of them is used on the wire."""

from __future__ import annotations

import json
import logging
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from genhub.common import topology
from genhub.v1 import task_pb2, task_service_pb2
from tests.fakes.openai import FakeOpenAI
from tests.support import infra
from tests.support.openai_env import KEY, REQUEST_KEY, STORED_KEY, adapter, fake
from tests.support.rest import client
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, wait_status
from tests.support.waiting import eventually

__all__ = ["fake"]
WRONG_KEY = "sk-genhub-test-WRONG-0d9e8f7a6b5c"
PLANTED = (KEY, STORED_KEY, REQUEST_KEY, WRONG_KEY)
TERMINAL = {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED}


async def chat(stack: Stack, prompt: str, api_key: str = "") -> task_pb2.Task:
    request = task_service_pb2.CreateTextTaskRequest(
        provider="openai", model="gpt-4o", text=S.TextSpec(prompt=prompt)
    )
    if api_key:
        request.credentials.api_key = api_key
    task = (await stack.tasks.CreateTextTask(request)).task
    return await wait_status(stack.tasks, task.task_id, TERMINAL)


async def dead_letter_bodies(vhost: str) -> list[bytes]:
    connection = await aio_pika.connect(infra.amqp_url(vhost))
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.dead_queue("openai"))
        held = []
        # Unacked messages are not handed out again: every one is read once.
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            held.append(message)
        for message in held:
            await message.nack(requeue=True)
        return [m.body for m in held]


def leaks(text: str) -> list[str]:
    return [key for key in PLANTED if key in text or key[-12:] in text]


async def test_planted_keys_never_leak(
    vhost: str,
    database: str,
    fake: FakeOpenAI,
    mongo: AsyncMongoClient[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and httpx2's included
    answers: list[str] = []
    async with start_stack(vhost, database, provider=adapter(fake.base_url), rest=True) as stack:
        deployment = await chat(stack, "with the deployment key")
        async with client(stack) as http:
            stored = await http.put(
                "/api/v1/providers/openai/config", json={"apiKey": STORED_KEY, "timeout": "30s"}
            )
            answers.append(stored.text)
            answers.append((await http.get("/api/v1/providers/openai/config")).text)
        assert stored.status_code == 200

        async def key_in_use() -> str:
            await chat(stack, "which key?")
            return fake.requests("chat")[-1].headers["authorization"]

        await eventually(key_in_use, lambda k: k == f"Bearer {STORED_KEY}", what="stored key used")
        own = await chat(stack, "with my own key", api_key=REQUEST_KEY)
        wrong = await chat(stack, "with a wrong key", api_key=WRONG_KEY)
        exhausted = await chat(stack, "always down [fail:500]", api_key=REQUEST_KEY)
        async with client(stack) as http:
            for task in (deployment, own, wrong, exhausted):
                answers.append((await http.get(f"/api/v1/ai/tasks/{task.task_id}")).text)
        bodies = await eventually(
            lambda: dead_letter_bodies(vhost), lambda b: len(b) == 1, what="the dead letter"
        )

    # Every key was really used on the wire ...
    used = {s.headers["authorization"].removeprefix("Bearer ") for s in fake.calls}
    assert used == {KEY, STORED_KEY, REQUEST_KEY, WRONG_KEY}
    assert deployment.status == own.status == S.TASK_STATUS_SUCCEEDED
    assert wrong.status == exhausted.status == S.TASK_STATUS_FAILED
    assert wrong.error.error_class == "auth" and "Incorrect API key provided" in wrong.error.message
    # ... and appears nowhere else.
    for task in (deployment, own, wrong, exhausted):
        assert not leaks(str(task)), task
    assert not leaks("\n".join(answers))
    assert bodies and not leaks(b"\n".join(bodies).decode())
    assert json.loads(bodies[0])["credentials"]  # the per-request key travels encrypted
    documents = []
    for name in await mongo[database].list_collection_names():
        documents += await mongo[database][name].find({}).to_list()
    assert len(documents) >= 5
    assert not leaks(json.dumps(documents, default=str))
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert any(r.name.startswith("openai") for r in caplog.records)  # the SDK's debug logs too
    assert not leaks(logged)
