"""One contract, every TaskRepository: the in-memory twin, MongoDB's code path on FerretDB with
the write gate (as `make run` uses it), and with the gate forced off (MongoDB's ungated
compare-and-set, issued one operation at a time since FerretDB's own is not atomic)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from genhub.common.ids import new_id
from genhub.taskstore import documents, lifecycle
from genhub.taskstore.lifecycle import Change, Clause, Guard
from genhub.taskstore.memory_task_repository import MemoryTaskRepository
from genhub.taskstore.mongo import Database
from genhub.taskstore.mongo_task_repository import MongoTaskRepository
from genhub.taskstore.task_repository import TaskQuery, TaskRepository
from genhub.v1 import task_pb2
from tests.support import infra

BACKENDS = ["memory", "ferretdb-gated", "ferretdb-ungated"]
# Concurrent compare-and-sets are atomic on MongoDB and through the gate; FerretDB without the
# gate is not (measured: 4-5 of 20 win), which is exactly why the gate exists.
ATOMIC = ["memory", "ferretdb-gated"]


@pytest.fixture(params=BACKENDS)
async def repo(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[TaskRepository]:
    if request.param == "memory":
        yield MemoryTaskRepository()
        return
    infra.require_listening("FerretDB", 27017)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.MONGO_URL, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    try:
        database = await Database.open(client, unique, gated=request.param == "ferretdb-gated")
        repository = MongoTaskRepository(database)
        await repository.ensure_indexes()
        yield repository
    finally:
        await client.drop_database(unique)
        await client.close()


def _doc(prompt: str = "a fox", **fields: Any) -> dict[str, Any]:
    task = task_pb2.Task(
        task_id=new_id(),
        user_id=fields.pop("user_id", "u1"),
        idempotency_key=fields.pop("idempotency_key", ""),
        type=task_pb2.TASK_TYPE_IMAGE,
        provider=fields.pop("provider", "demo"),
        model="demo-image",
        image=task_pb2.ImageSpec(prompt=prompt, size="256x256"),
    )
    doc = lifecycle.new_document(documents.to_document(task), documents.now())
    doc.update(fields)
    return doc


async def test_insert_get_and_round_trip(repo: TaskRepository) -> None:
    doc = _doc("一只猫")
    stored, created = await repo.insert(doc)
    assert created
    got = await repo.get(doc["_id"])
    assert got is not None
    assert documents.from_document(got) == documents.from_document(stored)
    assert documents.from_document(got).image.prompt == "一只猫"
    assert await repo.get(new_id()) is None


async def test_a_repeated_idempotency_key_returns_the_first_task(repo: TaskRepository) -> None:
    first, created = await repo.insert(_doc("a red fox", idempotency_key="k1"))
    assert created
    again, created = await repo.insert(_doc("a red fox", idempotency_key="k1"))
    assert not created
    assert again["_id"] == first["_id"]
    other_user, created = await repo.insert(_doc(user_id="u2", idempotency_key="k1"))
    assert created and other_user["_id"] != first["_id"]


@pytest.mark.parametrize(
    ("clause", "doc_fields", "holds"),
    [
        (Clause(frozenset({"queued"})), {"status": "queued"}, True),
        (Clause(frozenset({"queued"})), {"status": "running"}, False),
        (Clause(frozenset({"running"}), run_id="r1"), {"status": "running", "run_id": "r1"}, True),
        (Clause(frozenset({"running"}), run_id="r1"), {"status": "running", "run_id": "r2"}, False),
        (
            Clause(frozenset({"running"}), attempts_below=3),
            {"status": "running", "attempts": 2},
            True,
        ),
        (
            Clause(frozenset({"running"}), attempts_below=3),
            {"status": "running", "attempts": 3},
            False,
        ),
        # A claim names its provider: the requested one, or the fallback serving the task.
        (Clause(frozenset({"queued"}), provider="demo"), {"status": "queued"}, True),
        (Clause(frozenset({"queued"}), provider="backup"), {"status": "queued"}, False),
        (
            Clause(frozenset({"queued"}), provider="backup"),
            {"status": "queued", "served_by": {"provider": "backup", "model": "b-1"}},
            True,
        ),
        (
            Clause(frozenset({"queued"}), provider="demo"),
            {"status": "queued", "served_by": {"provider": "backup", "model": "b-1"}},
            False,
        ),
    ],
)
async def test_a_guarded_update_applies_exactly_when_the_guard_holds(
    repo: TaskRepository, clause: Clause, doc_fields: dict[str, Any], holds: bool
) -> None:
    doc, _ = await repo.insert(_doc(**doc_fields))
    change = Change({"status": "succeeded", "run_id": ""}, {"attempts": 1})
    updated = await repo.update(doc["_id"], Guard((clause,)), change)
    after = await repo.get(doc["_id"])
    assert after is not None
    if holds:
        assert updated is not None and updated["status"] == "succeeded"
        assert after["attempts"] == doc.get("attempts", 0) + 1
    else:
        assert updated is None
        assert after["status"] == doc["status"] and after["attempts"] == doc["attempts"]


async def test_time_guards_compare_leases_and_updates(repo: TaskRepository) -> None:
    now = documents.now()
    lapsed, _ = await repo.insert(
        _doc(
            status="running",
            lease_until=now - timedelta(seconds=5),
            updated_at=now - timedelta(hours=2),
        )
    )
    live, _ = await repo.insert(_doc(status="running", lease_until=now + timedelta(seconds=30)))
    leased = Guard((Clause(frozenset({"running"}), lease_lapsed_at=now),))
    assert await repo.update(live["_id"], leased, Change({"run_id": "x"})) is None
    assert await repo.update(lapsed["_id"], leased, Change({"run_id": "x"})) is not None
    old = Guard((Clause(frozenset({"running"}), untouched_since=now - timedelta(hours=1)),))
    assert await repo.update(live["_id"], old, Change({"run_id": "y"})) is None
    assert await repo.update(lapsed["_id"], old, Change({"run_id": "y"})) is not None


async def test_an_either_or_guard_takes_any_clause(repo: TaskRepository) -> None:
    now = documents.now()
    guard = lifecycle.claim(now, 30, 3).guard
    queued, _ = await repo.insert(_doc(status="queued"))
    lapsed, _ = await repo.insert(
        _doc(status="running", attempts=1, lease_until=now - timedelta(seconds=1))
    )
    spent, _ = await repo.insert(
        _doc(status="running", attempts=3, lease_until=now - timedelta(seconds=1))
    )
    done, _ = await repo.insert(_doc(status="succeeded"))
    change = Change({"run_id": "claimed"})
    assert await repo.update(queued["_id"], guard, change) is not None
    assert await repo.update(lapsed["_id"], guard, change) is not None
    assert await repo.update(spent["_id"], guard, change) is None
    assert await repo.update(done["_id"], guard, change) is None


@pytest.mark.parametrize("repo", ATOMIC, indirect=True)
async def test_exactly_one_of_many_concurrent_claims_wins(repo: TaskRepository) -> None:
    for _ in range(3):
        doc, _ = await repo.insert(_doc(status="queued"))
        steps = [lifecycle.claim(documents.now(), 30, 5) for _ in range(20)]
        results = await asyncio.gather(*(repo.update(doc["_id"], s.guard, s.change) for s in steps))
        assert sum(r is not None for r in results) == 1
        after = await repo.get(doc["_id"])
        assert after is not None and after["attempts"] == 1


async def test_delete_returns_the_document_once(repo: TaskRepository) -> None:
    doc, _ = await repo.insert(_doc(idempotency_key="gone"))
    deleted = await repo.delete(doc["_id"])
    assert deleted is not None and deleted["_id"] == doc["_id"]
    assert await repo.delete(doc["_id"]) is None
    assert await repo.get(doc["_id"]) is None
    # Its idempotency key is free again.
    _, created = await repo.insert(_doc(idempotency_key="gone"))
    assert created


async def test_find_filters_orders_newest_first_and_pages(repo: TaskRepository) -> None:
    now = documents.now()
    docs = [
        (await repo.insert(_doc(f"Cat number {i}", user_id="alice" if i % 2 else "bob")))[0]
        for i in range(7)
    ]
    other, _ = await repo.insert(
        _doc(
            "a dog",
            provider="openai",
            status="running",
            lease_until=now - timedelta(seconds=1),
            outbox="r9",
        )
    )
    # Ids are time-ordered to the millisecond (random within one): newest first is id order.
    ids = sorted(d["_id"] for d in docs)
    alice_ids = sorted(d["_id"] for d in docs if d["user_id"] == "alice")
    three = next(d["_id"] for d in docs if d["prompt"] == "Cat number 3")
    assert [d["_id"] for d in await repo.find(TaskQuery(provider="demo"), 100)] == ids[::-1]
    alice = [d["_id"] for d in await repo.find(TaskQuery(user_id="alice"), 100)]
    assert alice == alice_ids[::-1]
    found = await repo.find(TaskQuery(prompt_contains="cAt NUMBER 3"), 10)
    assert [d["_id"] for d in found] == [three]
    page1 = await repo.find(TaskQuery(provider="demo"), 3)
    page2 = await repo.find(TaskQuery(provider="demo"), 3, page1[-1]["_id"])
    assert [d["_id"] for d in page1 + page2] == ids[::-1][:6]
    for query in (
        TaskQuery(statuses=("running",)),
        TaskQuery(lease_lapsed_at=now),
        TaskQuery(outbox="r9"),
        TaskQuery(type="image", provider="openai"),
    ):
        assert [d["_id"] for d in await repo.find(query, 10)] == [other["_id"]], query
    assert await repo.find(TaskQuery(updated_before=now - timedelta(days=1)), 10) == []


async def test_relay_heartbeats(repo: TaskRepository) -> None:
    now = documents.now()
    await repo.beat("a", now - timedelta(minutes=5))
    await repo.beat("b", now)
    await repo.beat("a", now)
    assert await repo.relays() == {"a": now, "b": now}
    await repo.forget_relay("a")
    assert await repo.relays() == {"b": now}


async def test_ferretdb_keeps_only_the_indexes_it_uses(unique: str) -> None:
    # FerretDB scans for every filter but _id, so a secondary index only slows its writes; the
    # unique idempotency index stays (it enforces correctness). MongoDB gets all of them.
    infra.require_listening("FerretDB", 27017)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.MONGO_URL, tz_aware=True)
    try:
        await client[unique]["tasks"].create_index("outbox", name="outbox")  # an older version's
        database = await Database.open(client, unique)
        assert database.ferretdb
        await MongoTaskRepository(database).ensure_indexes()
        names = set(await client[unique]["tasks"].index_information())
        assert names == {"_id_", "dedupe"}
    finally:
        await client.drop_database(unique)
        await client.close()


async def test_the_gated_cache_keeps_documents_in_flight_not_settled_ones(unique: str) -> None:
    # The gate's write-through cache saves a read per compare-and-set for documents still being
    # written; finished ones are dropped, or it grows by a document per task (as `make soak`
    # showed, ~4 KB a task, up to its 20,000 cap).
    infra.require_listening("FerretDB", 27017)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.MONGO_URL, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    try:
        database = await Database.open(client, unique, gated=True)
        jobs = database.collection("jobs", settled=lambda doc: doc.get("state") == "done")
        for n in range(10):
            await jobs.insert_one({"_id": str(n), "state": "new"})
        assert jobs.remembered == 10
        for n in range(6):
            done = await jobs.update_if(
                str(n),
                {"_id": str(n), "state": "new"},
                lambda doc: doc.get("state") == "new",
                {"$set": {"state": "done"}},
            )
            assert done is not None and done["state"] == "done"
        assert jobs.remembered == 4
        assert await jobs.find_one({"_id": "0"}) == {"_id": "0", "state": "done"}
        ungated = (await Database.open(client, unique, gated=False)).collection("jobs")
        await ungated.insert_one({"_id": "99", "state": "new"})
        assert ungated.remembered == 0
    finally:
        await client.drop_database(unique)
        await client.close()
