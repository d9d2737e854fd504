"""``DeliveryConsumer``: the delivering side. Takes events from the durable queue, POSTs them
signed, and acknowledges only after the outcome is settled: delivered, a retry published
(confirmed) to the next delay queue, or dead-lettered. A process killed mid-delivery leaves the
message unacknowledged, so the broker hands it to the next consumer: nothing pending is lost,
and a receiver may see an event twice (Standard Webhooks' ``webhook-id`` lets it deduplicate).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from genhub.egress import (
    EgressPolicy,
    EgressRefused,
    HttpStatusError,
    Resolver,
    guarded_client,
    open_stream,
)
from genhub.notifier import topology
from genhub.notifier.delivery_log import Attempt, DeliveryLog
from genhub.notifier.events import WebhookEvent
from genhub.notifier.media_links import BodyFilter
from genhub.notifier.signing import Signer

log = logging.getLogger(__name__)
USER_AGENT = "GenHub-Webhooks/1"


def _redact(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0][:300]


class DeliveryConsumer:
    """Delivers webhook events from ``queue``; ``schedule`` holds the retry delays (seconds),
    so an event is tried ``len(schedule) + 1`` times at most."""

    def __init__(
        self,
        amqp_url: str,
        *,
        signer: Signer,
        delivery_log: DeliveryLog,
        policy: EgressPolicy,
        queue: str = "genhub.webhooks",
        schedule: Sequence[float] = (),
        timeout: float = 15.0,
        concurrency: int = 8,
        resolver: Resolver | None = None,
        prepare: BodyFilter | None = None,
    ) -> None:
        self._url = amqp_url
        # Set once the queue is consumed (the notifier's readiness).
        self.consuming = asyncio.Event()
        self._signer = signer
        self._log = delivery_log
        self._policy = policy
        self._queue = queue
        self._schedule = list(schedule)
        self._timeout = timeout
        self._concurrency = concurrency
        self._http = guarded_client(
            policy, resolver, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))
        )
        self._channel: AbstractChannel | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._prepare = prepare  # e.g. fresh media URLs into the payload (media_links.py)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then stop taking messages, let the deliveries in
        flight finish (each is bounded by ``timeout``), and close."""
        connection = await aio_pika.connect_robust(self._url)
        try:
            self._channel = await connection.channel(publisher_confirms=True)
            await self._channel.set_qos(prefetch_count=self._concurrency)
            await topology.declare(self._channel, self._queue, self._schedule)
            queue = await self._channel.get_queue(self._queue)
            tag = await queue.consume(self._on_message)
            self.consuming.set()
            log.info("webhook consumer started", extra={"queue": self._queue})
            await stop.wait()
            await queue.cancel(tag)
            if self._in_flight:
                await asyncio.wait(self._in_flight)
        finally:
            await connection.close()
            await self._http.aclose()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            await self._handle(message)
        finally:
            self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = WebhookEvent.decode(message.body)
        except ValueError:
            log.error("dropping a message that is not a webhook event")
            await message.reject(requeue=False)
            return
        try:
            await self._deliver(event)
            await message.ack()
        except Exception:
            # Broker or delivery log unreachable: hand the message back after a pause (no hot
            # redelivery loop); it is delivered again, which receivers deduplicate.
            log.exception("webhook event handed back", extra={"task_id": event.task_id})
            await asyncio.sleep(1.0)
            await message.nack(requeue=True)

    async def _post(self, event: WebhookEvent, started: datetime) -> tuple[int, str, bool]:
        """(status code, error text, refused) of one POST; status 0 without an answer."""
        body = await self._prepare(event.body) if self._prepare is not None else event.body
        headers = {
            **self._signer.headers(event.event_id, started, body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            async with asyncio.timeout(self._timeout):
                async with open_stream(
                    self._http,
                    event.url,
                    self._policy,
                    method="POST",
                    max_redirects=0,  # a redirect is a failed delivery, never silently followed
                    headers=headers,
                    content=body.encode(),
                ) as response:
                    return response.status_code, "", False
        except EgressRefused as exc:
            return 0, f"refused: {exc.reason}", True
        except HttpStatusError as exc:
            return exc.status, str(exc), False
        except TimeoutError:
            return 0, f"no answer within {self._timeout:g}s", False
        except httpx.HTTPError as exc:
            return 0, type(exc).__name__, False

    async def _deliver(self, event: WebhookEvent) -> None:
        started = datetime.now(UTC)
        clock = time.monotonic()
        status, error, refused = await self._post(event, started)
        assert self._channel is not None
        tried = event.attempt + 1
        next_at: datetime | None = None
        if not error:
            outcome = "delivered"
        elif refused or event.attempt >= len(self._schedule):
            outcome = "refused" if refused else "failed"
            dead = WebhookEvent(**{**event.__dict__, "attempt": tried})
            await topology.publish(self._channel, topology.dead_queue(self._queue), dead)
        else:
            outcome = "retrying"
            delay = self._schedule[event.attempt]
            retry = WebhookEvent(**{**event.__dict__, "attempt": tried})
            await topology.publish(self._channel, topology.retry_queue(self._queue, delay), retry)
            next_at = started + timedelta(seconds=delay)
        await self._log.record(
            Attempt(
                event_id=event.event_id,
                task_id=event.task_id,
                attempt=tried,
                url=_redact(event.url),
                event_type=event.type,
                outcome=outcome,
                status_code=status,
                error=error,
                started_at=started,
                duration_ms=round((time.monotonic() - clock) * 1000, 1),
                next_attempt_at=next_at,
            )
        )
        log.info(
            "webhook %s",
            outcome,
            extra={"task_id": event.task_id, "status_code": status, "attempt": tried},
        )
