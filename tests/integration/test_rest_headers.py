"""Headers on the real stack: Idempotency-Key fills the request's key (the body's wins),
X-Request-Id comes back, and the REST layer's own overhead stays small."""

from __future__ import annotations

import statistics

import httpx

from tests.support.rest import http, rest_stack

__all__ = ["http", "rest_stack"]  # fixtures this module uses

TEXT = {"provider": "demo", "model": "demo-text", "text": {"prompt": "hi"}, "userId": "hdr"}


async def test_idempotency_key_header_returns_the_first_task(http: httpx.AsyncClient) -> None:
    first = await http.post("/api/v1/ai/text/task", json=TEXT, headers={"Idempotency-Key": "k1"})
    again = await http.post("/api/v1/ai/text/task", json=TEXT, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["idempotencyKey"] == "k1"
    assert again.json()["taskId"] == first.json()["taskId"]
    assert again.headers["Location"] == first.headers["Location"]

    body_wins = await http.post(
        "/api/v1/ai/text/task",
        json=TEXT | {"idempotencyKey": "k2"},
        headers={"Idempotency-Key": "k1"},
    )
    assert body_wins.json()["idempotencyKey"] == "k2"
    assert body_wins.json()["taskId"] != first.json()["taskId"]


async def test_request_id_comes_back(http: httpx.AsyncClient) -> None:
    given = await http.get("/api/v1/ai/tasks", headers={"X-Request-Id": "trace-7"})
    assert given.headers["X-Request-Id"] == "trace-7"
    made = await http.get("/api/v1/ai/tasks")
    assert len(made.headers["X-Request-Id"]) == 24


async def test_rest_overhead_p50_over_200_gets_is_small(http: httpx.AsyncClient) -> None:
    created = await http.post("/api/v1/ai/text/task", json=TEXT | {"wait": "20s"})
    path = f"/api/v1/ai/task/result/{created.json()['taskId']}"
    overheads: list[float] = []
    for _ in range(200):
        response = await http.get(path)
        assert response.status_code == 200
        overheads.append(float(response.headers["X-Gateway-Overhead-Ms"]))
        gateway, grpc_part = response.headers["Server-Timing"].split(", ")
        assert gateway == f"gateway;dur={response.headers['X-Gateway-Overhead-Ms']}"
        assert float(grpc_part.removeprefix("grpc;dur=")) > 0
    # Typically well under 1 ms; the bound only catches a regression by an order of magnitude.
    assert statistics.median(overheads) < 10.0
