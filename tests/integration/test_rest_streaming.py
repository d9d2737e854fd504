"""WatchTask over HTTP on the real stack: NDJSON (grpc-gateway's format) and Server-Sent Events
deliver every transition of a task that waits in the queue, and end with an error line when the
task goes away mid-stream."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.rest import SseParser, client, rest_single
from tests.support.stack import Stack
from tests.support.waiting import eventually

__all__ = ["rest_single"]  # a fixture this module uses

TEXT = {"provider": "demo", "model": "demo-text"}
TRANSITIONS = ["TASK_STATUS_QUEUED", "TASK_STATUS_RUNNING", "TASK_STATUS_SUCCEEDED"]


async def _create(http: httpx.AsyncClient, prompt: str) -> dict[str, Any]:
    response = await http.post("/api/v1/ai/text/task", json=TEXT | {"text": {"prompt": prompt}})
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


async def _occupy(http: httpx.AsyncClient) -> dict[str, Any]:
    """A task that keeps the single worker busy for 1.5 s, once it runs."""
    busy = await _create(http, "busy [sleep:1500]")

    async def status() -> str:
        return str((await http.get(f"/api/v1/ai/task/result/{busy['taskId']}")).json()["status"])

    await eventually(status, lambda s: s == "TASK_STATUS_RUNNING", what="busy task running")
    return busy


async def test_watch_streams_every_transition_as_ndjson(rest_single: Stack) -> None:
    async with client(rest_single) as http:
        await _occupy(http)
        task = await _create(http, "watch me [sleep:200]")
        assert task["status"] == "TASK_STATUS_QUEUED"
        lines: list[dict[str, Any]] = []
        async with http.stream("GET", f"/api/v1/ai/task/{task['taskId']}:watch") as response:
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "application/x-ndjson"
            async for line in response.aiter_lines():
                if line:
                    lines.append(json.loads(line))
        assert [set(line) for line in lines] == [{"result"}] * 3
        assert [line["result"]["status"] for line in lines] == TRANSITIONS
        assert {line["result"]["taskId"] for line in lines} == {task["taskId"]}
        assert "watch me" in lines[-1]["result"]["result"]["text"]


async def test_watch_streams_every_transition_as_server_sent_events(rest_single: Stack) -> None:
    async with client(rest_single) as http:
        await _occupy(http)
        task = await _create(http, "watch me too [sleep:200]")
        parser = SseParser()
        headers = {"Accept": "text/event-stream"}
        path = f"/api/v1/ai/task/{task['taskId']}:watch"
        async with http.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["Cache-Control"] == "no-cache"
            async for chunk in response.aiter_text():
                parser.feed(chunk)
        assert [e.event for e in parser.events] == ["result", "result", "result", "end"]
        assert [e.json()["status"] for e in parser.events[:3]] == TRANSITIONS


async def test_a_task_deleted_mid_watch_ends_the_stream_with_an_error_line(
    rest_single: Stack,
) -> None:
    async with client(rest_single) as http:
        await _occupy(http)
        task = await _create(http, "never runs")
        async with http.stream("GET", f"/api/v1/ai/task/{task['taskId']}:watch") as response:
            lines = response.aiter_lines()
            first = json.loads(await anext(lines))
            assert first["result"]["status"] == "TASK_STATUS_QUEUED"
            deleted = await http.delete(f"/api/v1/ai/task/{task['taskId']}")
            assert deleted.status_code == 200 and deleted.json() == {}
            rest = [json.loads(line) async for line in lines if line]
        assert rest[-1]["error"]["code"] == 5  # NOT_FOUND
        assert all("result" in line for line in rest[:-1])
