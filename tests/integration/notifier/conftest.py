"""A loopback webhook receiver with scripted answers, and notifier parts wired to the test's own
RabbitMQ vhost and FerretDB database."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from genhub.egress import EgressPolicy
from genhub.notifier.consumer import DeliveryConsumer
from genhub.notifier.delivery_log import DeliveryLog
from genhub.notifier.signing import Signer
from tests.support import http_server, infra

LOOPBACK = EgressPolicy.from_setting("127.0.0.0/8")  # the receiver is local, as in-cluster ones


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers POST /hook with the next scripted status (200 once the script runs out); 301
    redirects to /elsewhere, which records that it was (wrongly) followed. ``hold`` makes the
    next request wait until released."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    followed: int = 0
    hold: asyncio.Event | None = None

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.received.append(
                Received(dict(request.headers), await request.body(), time.monotonic())
            )
            if self.hold is not None:
                await self.hold.wait()
            status = self.script.pop(0) if self.script else 200
            if status == 301:
                return RedirectResponse("/elsewhere", status_code=301)
            return Response(b"", status_code=status)

        async def elsewhere(request: Request) -> Response:
            self.followed += 1
            return Response(b"")

        return Starlette(
            routes=[
                Route("/hook", hook, methods=["POST"]),
                Route("/elsewhere", elsewhere, methods=["POST", "GET"]),
            ]
        )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with http_server.serve(rec.app()) as port:
        rec.url = f"http://127.0.0.1:{port}/hook"
        yield rec


@pytest.fixture
async def delivery_log(mongo: AsyncMongoClient[dict[str, Any]], database: str) -> DeliveryLog:
    log = DeliveryLog(mongo, database)
    await log.ensure_indexes()
    return log


@dataclass
class Consumers:
    """Starts delivery consumers on the test vhost; ``crash`` drops one without acknowledging."""

    vhost: str
    log: DeliveryLog
    running: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = field(default_factory=dict)

    def start(self, secrets: list[str], schedule: list[float], **kwargs: Any) -> int:
        consumer = DeliveryConsumer(
            infra.amqp_url(self.vhost),
            signer=Signer(secrets),
            delivery_log=self.log,
            policy=kwargs.pop("policy", LOOPBACK),
            schedule=schedule,
            timeout=5,
            **kwargs,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        self.running[id(task)] = (stop, task)
        return id(task)

    async def crash(self, key: int) -> None:
        _, task = self.running.pop(key)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_all(self) -> None:
        for stop, _task in self.running.values():
            stop.set()
        for _, task in self.running.values():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        self.running.clear()


@pytest.fixture
async def consumers(vhost: str, delivery_log: DeliveryLog) -> AsyncIterator[Consumers]:
    made = Consumers(vhost, delivery_log)
    yield made
    await made.stop_all()
