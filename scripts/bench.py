"""``make bench``: throughput and latency of GenHub on this machine, with the demo provider.

Starts the services as real processes (like ``make run``) on spare ports, in a fresh RabbitMQ
vhost and MongoDB database, drives them from this process, and prints one table. Figures are
percentiles from one run; the machine is printed with them.

The prompt-search figure (``search``) stores ``--search-rows`` tasks straight into a scratch
database with pymongo and searches them through a task-store and a gateway run in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devstack

from genhub.common import store_client
from genhub.common.ids import new_id
from genhub.store.v1 import task_store_pb2, task_store_pb2_grpc
from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

S = task_pb2
MANAGEMENT = "http://127.0.0.1:15672/api"
AUTH = ("guest", "guest")


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def machine() -> str:
    """A line naming the machine."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


async def _vhost(name: str, create: bool) -> None:
    async with httpx.AsyncClient(base_url=MANAGEMENT, auth=AUTH, timeout=10) as client:
        if create:
            (await client.put(f"/vhosts/{name}")).raise_for_status()
            perms = {"configure": ".*", "write": ".*", "read": ".*"}
            (await client.put(f"/permissions/{name}/guest", json=perms)).raise_for_status()
        else:
            await client.delete(f"/vhosts/{name}")


async def _bounded(jobs: Sequence[Callable[[], Awaitable[None]]], parallel: int) -> float:
    """Run ``jobs`` with at most ``parallel`` at once; returns wall seconds."""
    gate = asyncio.Semaphore(parallel)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    started = time.perf_counter()
    await asyncio.gather(*(one(j) for j in jobs))
    return time.perf_counter() - started


async def _all_finished(
    store: store_client.TaskStoreClient, ids: set[str], limit: float
) -> list[task_pb2.Task]:
    deadline = time.monotonic() + limit
    while True:
        finished: list[task_pb2.Task] = []
        token = ""
        while True:
            page = await store.list_tasks(
                task_store_pb2.ListTasksRequest(
                    statuses=[S.TASK_STATUS_SUCCEEDED], page_size=1000, page_token=token
                )
            )
            finished += [t for t in page.tasks if t.task_id in ids]
            token = page.next_page_token
            if not token:
                break
        if len(finished) >= len(ids) or time.monotonic() > deadline:
            return finished
        await asyncio.sleep(0.5)


async def lifecycle(
    stub: task_service_pb2_grpc.TaskServiceAsyncStub,
    store: store_client.TaskStoreClient,
    n: int,
    parallel: int,
) -> list[str]:
    """Create ``n`` text tasks and follow them to succeeded."""
    latencies: list[float] = []
    ids: set[str] = set()

    def job(i: int) -> Callable[[], Awaitable[None]]:
        async def create() -> None:
            started = time.perf_counter()
            task = (
                await stub.CreateTextTask(
                    task_service_pb2.CreateTextTaskRequest(
                        provider="demo",
                        model="demo-text",
                        text=S.TextSpec(prompt=f"bench {i}"),
                        user_id="bench",
                    )
                )
            ).task
            latencies.append(time.perf_counter() - started)
            ids.add(task.task_id)

        return create

    wall = await _bounded([job(i) for i in range(n)], parallel)
    finished = await _all_finished(store, ids, limit=300)
    e2e = [(t.finish_time.ToNanoseconds() - t.create_time.ToNanoseconds()) / 1e9 for t in finished]
    first = min(t.create_time.ToNanoseconds() for t in finished)
    last = max(t.finish_time.ToNanoseconds() for t in finished)
    return [
        f"gRPC create: {n / wall:,.0f} tasks/s ({parallel} concurrent callers); "
        f"latency p50 {pct(latencies, 50) * 1e3:.1f} ms, p99 {pct(latencies, 99) * 1e3:.1f} ms",
        f"end to end (create -> succeeded, server clocks): p50 {pct(e2e, 50) * 1e3:.0f} ms, "
        f"p99 {pct(e2e, 99) * 1e3:.0f} ms; {len(finished)}/{n} succeeded",
        f"completed: {len(finished) / ((last - first) / 1e9):,.0f} tasks/s "
        "(one demo worker, concurrency 4)",
    ]


async def priority(
    stub: task_service_pb2_grpc.TaskServiceAsyncStub,
    store: store_client.TaskStoreClient,
    backlog: int,
) -> list[str]:
    """Queue wait of critical tasks created behind a backlog of low ones."""
    low_ids: set[str] = set()
    critical_ids: set[str] = set()

    async def create(prompt: str, level: task_pb2.Priority.ValueType, into: set[str]) -> None:
        task = (
            await stub.CreateTextTask(
                task_service_pb2.CreateTextTaskRequest(
                    provider="demo",
                    model="demo-text",
                    text=S.TextSpec(prompt=prompt),
                    priority=level,
                )
            )
        ).task
        into.add(task.task_id)

    def low_job(i: int) -> Callable[[], Awaitable[None]]:
        return lambda: create(f"low {i}", S.PRIORITY_LOW, low_ids)

    await _bounded([low_job(i) for i in range(backlog)], 32)
    for i in range(10):
        await create(f"critical {i}", S.PRIORITY_CRITICAL, critical_ids)
    done = await _all_finished(store, low_ids | critical_ids, limit=300)

    def wait(t: task_pb2.Task) -> float:
        return (t.start_time.ToNanoseconds() - t.create_time.ToNanoseconds()) / 1e9

    crit = [wait(t) for t in done if t.task_id in critical_ids]
    low = [wait(t) for t in done if t.task_id in low_ids]
    return [
        f"priority: 10 critical tasks behind {backlog} low ones waited "
        f"p50 {pct(crit, 50) * 1e3:.0f} ms, max {max(crit) * 1e3:.0f} ms; "
        f"the low ones p50 {pct(low, 50) * 1e3:.0f} ms, max {max(low) * 1e3:.0f} ms",
    ]


async def prefetch_effect(vhost: str, backlog: int) -> list[str]:
    """How many low messages reach a consumer before a critical one, by prefetch.

    The consumer takes 2 ms per message; the critical message is published once the consumer
    is busy. Whatever the prefetch window already holds cannot be overtaken.
    """
    lines = []
    for prefetch in (4, 100):
        connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=prefetch)
            queue = await channel.declare_queue(
                f"prefetch-{prefetch}", arguments={"x-max-priority": 3}, auto_delete=True
            )
            for _ in range(backlog):
                await channel.default_exchange.publish(
                    aio_pika.Message(b"low", priority=1), routing_key=queue.name
                )
            order: list[bytes] = []
            busy = asyncio.Event()
            finished = asyncio.Event()

            async def consume(
                message: aio_pika.abc.AbstractIncomingMessage,
                order: list[bytes] = order,
                busy: asyncio.Event = busy,
                finished: asyncio.Event = finished,
            ) -> None:
                order.append(message.body)
                busy.set()
                await asyncio.sleep(0.002)  # 2 ms of "work"
                await message.ack()
                if message.body == b"critical":
                    finished.set()

            tag = await queue.consume(consume)
            await busy.wait()
            await channel.default_exchange.publish(
                aio_pika.Message(b"critical", priority=3), routing_key=queue.name
            )
            await finished.wait()
            await queue.cancel(tag)
            before = order.index(b"critical")
            lines.append(
                f"prefetch {prefetch}: {before} low messages were handled before the critical one"
            )
    return lines


# Prompt vocabularies for the search figure: about half the prompts Chinese, half English.
_ZH = tuple(
    str.split(
        "一只 可爱的 猫咪 小狗 在 花园里 夕阳下 大海边 森林中 城市 夜晚 霓虹灯 机器人 水彩画 油画 "
        "古老的 未来的 雪山 河流 金色的 玻璃 巨龙 城堡 樱花 星空 熊猫 宇航员 赛博朋克 微笑的 女孩"
    )
)
_EN = tuple(
    str.split(
        "a an the red blue golden silver tiny giant cute ancient futuristic fox cat dog dragon "
        "robot castle garden forest ocean mountain city street night sunset neon portrait of in "
        "at with under watercolor oil painting photo cinematic lighting detailed snowy rainy glass"
    )
)
# (query, what it exercises). Every search scans the collection on FerretDB; the mix matters for
# MongoDB, where a selective term is found through an index and a common one by a short scan.
SEARCH_QUERIES = (
    ("城市", "Chinese word, common"),
    ("可爱的猫", "Chinese phrase, rarer"),
    ("Red Fox", "English phrase, other case"),
    ("unicorn", "no match"),
)
SEARCH_PAGE = 50


def _search_prompt(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return "".join(rng.choice(_ZH) for _ in range(rng.randint(3, 8)))
    if roll < 0.9:
        return " ".join(rng.choice(_EN) for _ in range(rng.randint(5, 14))).capitalize()
    return " ".join(rng.choice(_ZH + _EN) for _ in range(rng.randint(4, 10)))


def bigrams(text: str) -> list[str]:
    """The distinct lower-cased character bigrams of ``text`` (the n-gram strategy's terms)."""
    low = text.lower()
    return sorted({low[i : i + 2] for i in range(len(low) - 1)})


def _search_rows(n: int, rng: random.Random) -> Any:
    """``n`` stored-task documents in task-store's layout, in batches of 1000, oldest first."""
    from genhub.taskstore import documents

    kinds = [S.TASK_TYPE_IMAGE] * 7 + [S.TASK_TYPE_VIDEO, S.TASK_TYPE_TEXT] * 2 + [S.TASK_TYPE_TEXT]
    statuses = ["succeeded"] * 8 + ["failed", "cancelled"]
    batch: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.choice(kinds)
        task = task_pb2.Task(
            task_id=new_id(),
            user_id=f"user-{rng.randrange(200)}",
            type=kind,
            provider="demo",
            model="demo-image",
        )
        prompt = _search_prompt(rng)
        if kind == S.TASK_TYPE_IMAGE:
            task.image.CopyFrom(S.ImageSpec(prompt=prompt, size="512x512"))
        elif kind == S.TASK_TYPE_VIDEO:
            task.video.CopyFrom(S.VideoSpec(prompt=prompt, duration_seconds=4))
        else:
            task.text.CopyFrom(S.TextSpec(prompt=prompt))
        doc = documents.to_document(task, documents.now())
        doc["status"] = statuses[i % len(statuses)]
        batch.append(doc)
        if len(batch) == 1000:
            yield batch
            batch = []
    if batch:
        yield batch


async def _timed(call: Callable[[str], Awaitable[Any]], query: str) -> float:
    started = time.perf_counter()
    await call(query)
    return time.perf_counter() - started


def _ms(values: Sequence[float]) -> str:
    return f"p50 {pct(values, 50) * 1e3:,.0f} ms, p95 {pct(values, 95) * 1e3:,.0f} ms"


async def search(rows: int, vhost: str) -> list[str]:
    """p50/p95 prompt-search latency over ``rows`` stored tasks (mixed Chinese and English):
    (a) the product's escaped, case-insensitive ``$regex``, through task-store (and once through
    the gateway); (b) an n-gram pre-filter: an indexed array of the prompt's lower-cased
    character bigrams, ``$all`` of the query's bigrams next to the regex, straight on the
    database; (c) for comparison, the regex over a slim side collection (id, lower-cased prompt,
    user, status) followed by reading the page's tasks by ``_id``."""
    from pydantic import SecretStr
    from pymongo import DESCENDING, AsyncMongoClient

    from genhub.gateway import app as gateway_app
    from genhub.gateway.config import GatewaySettings
    from genhub.taskstore import app as taskstore_app
    from genhub.taskstore.config import TaskStoreSettings
    from genhub.taskstore.repository import literal_pattern

    database = "benchsearch" + secrets.token_hex(4)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:27017/", socketTimeoutMS=600_000
    )
    db = mongo[database]
    lines: list[str] = []
    try:
        # The rows, as task-store would store them.
        started = time.perf_counter()
        slim_rows: list[dict[str, Any]] = []
        for batch in _search_rows(rows, random.Random(2026)):
            await db["tasks"].insert_many(batch, ordered=False)
            slim_rows += [
                {"_id": d["_id"], "p": d["prompt"].lower(), "u": d["user_id"], "s": d["status"]}
                for d in batch
            ]
        took = time.perf_counter() - started
        hits = {q: sum(q.lower() in row["p"] for row in slim_rows) for q, _ in SEARCH_QUERIES}
        lines.append(
            f"search: {rows:,} tasks stored with insert_many in {took:.0f} s "
            f"({rows / took:,.0f} rows/s); queries (matches): "
            + ", ".join(f"{q!r} ({hits[q]:,})" for q, _ in SEARCH_QUERIES)
        )
        store_settings = TaskStoreSettings(
            taskstore_listen="127.0.0.1:0", mongo_db=database, events_prefix=f"{database}:"
        )
        async with contextlib.AsyncExitStack() as stack:
            # (a) the product: SearchTasks of task-store.
            _, port = await stack.enter_async_context(taskstore_app.running(store_settings))
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            stack.push_async_callback(channel.close)
            store = task_store_pb2_grpc.TaskStoreServiceStub(channel)

            async def via_store(query: str) -> None:
                request = task_store_pb2.SearchTasksRequest(query=query, page_size=SEARCH_PAGE)
                await store.SearchTasks(request, timeout=600)

            regex = [await _timed(via_store, q) for q, _ in SEARCH_QUERIES]
            lines.append(
                f"  (a) escaped $regex, through task-store: {_ms(regex)} over {len(regex)} "
                f"searches ({pct(regex, 50) / rows * 1e6:,.0f} us per stored task)"
            )

            # (b) the n-gram pre-filter, on a copy of the rows that carries the bigrams.
            grams = db["tasks_bigrams"]
            await grams.create_index([("bigrams", 1), ("_id", -1)], name="bigrams_newest")
            started = time.perf_counter()
            for batch in _search_rows(rows, random.Random(2026)):
                for doc in batch:
                    doc["bigrams"] = bigrams(doc["prompt"])
                await grams.insert_many(batch, ordered=False)
            took_b = time.perf_counter() - started

            async def prefiltered(query: str) -> None:
                flt = {
                    "bigrams": {"$all": bigrams(query)},
                    "prompt": {"$regex": literal_pattern(query), "$options": "i"},
                }
                await grams.find(flt).sort("_id", DESCENDING).limit(SEARCH_PAGE + 1).to_list()

            ngram = [await _timed(prefiltered, q) for q, _ in SEARCH_QUERIES]
            lines.append(
                f"  (b) bigram $all pre-filter + $regex, on the database: {_ms(ngram)} "
                f"(rows with bigrams stored at {rows / took_b:,.0f} rows/s)"
            )

            # (c) the regex over a slim side collection, then the page's tasks by _id.
            slim = db["prompts"]
            for i in range(0, len(slim_rows), 1000):
                await slim.insert_many(slim_rows[i : i + 1000], ordered=False)

            async def side(query: str) -> None:
                flt = {"p": {"$regex": literal_pattern(query.lower())}}
                page = await slim.find(flt).sort("_id", DESCENDING).limit(SEARCH_PAGE).to_list()
                for hit in page:
                    await db["tasks"].find_one({"_id": hit["_id"]})

            side_times = [await _timed(side, q) for q, _ in SEARCH_QUERIES]
            lines.append(
                f"  (c) $regex on a slim side collection, then the tasks by _id: {_ms(side_times)}"
            )

            # Last, as a client sees (a): one search through the gateway.
            gateway_settings = GatewaySettings(
                gateway_listen="127.0.0.1:0",
                taskstore_addr=f"127.0.0.1:{port}",
                amqp_url=SecretStr(f"amqp://guest:guest@127.0.0.1:5672/{vhost}"),
                events_prefix=f"{database}:",
                rest_listen="",
            )
            _, gw_port = await stack.enter_async_context(gateway_app.running(gateway_settings))
            gw_channel = grpc.aio.insecure_channel(f"127.0.0.1:{gw_port}")
            stack.push_async_callback(gw_channel.close)
            public = task_service_pb2_grpc.TaskServiceStub(gw_channel)
            request = task_service_pb2.SearchTasksRequest(
                query=SEARCH_QUERIES[0][0], page_size=SEARCH_PAGE
            )
            started = time.perf_counter()
            try:
                await public.SearchTasks(request, timeout=120)
                outcome = "OK"
            except grpc.aio.AioRpcError as exc:
                outcome = exc.code().name
            lines.append(
                f"  (a) through the gateway, whose task-store search deadline is "
                f"{store_client.SEARCH_TIMEOUT:.0f} s: {outcome} after "
                f"{time.perf_counter() - started:.1f} s"
            )
    finally:
        await mongo.drop_database(database)
        await mongo.close()
    return lines


async def rest_versus_grpc(
    stub: task_service_pb2_grpc.TaskServiceAsyncStub, rest: str, n: int
) -> list[str]:
    """The same creates, one at a time, over gRPC and over REST; and the REST layer's own cost."""
    body = {"provider": "demo", "model": "demo-text", "text": {"prompt": "rest or grpc"}}
    grpc_times: list[float] = []
    rest_times: list[float] = []
    overhead: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://{rest}", timeout=30) as http:
        for _ in range(n):
            started = time.perf_counter()
            await stub.CreateTextTask(
                task_service_pb2.CreateTextTaskRequest(
                    provider="demo", model="demo-text", text=S.TextSpec(prompt="rest or grpc")
                )
            )
            grpc_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = await http.post("/api/v1/ai/text/task", json=body)
            rest_times.append(time.perf_counter() - started)
            response.raise_for_status()
            overhead.append(float(response.headers["x-gateway-overhead-ms"]) / 1e3)
    g50, r50 = pct(grpc_times, 50), pct(rest_times, 50)
    return [
        f"create, one at a time ({n} each, alternating): gRPC p50 {g50 * 1e3:.1f} ms, "
        f"p99 {pct(grpc_times, 99) * 1e3:.1f} ms; REST p50 {r50 * 1e3:.1f} ms, "
        f"p99 {pct(rest_times, 99) * 1e3:.1f} ms (REST/gRPC p50 {r50 / g50:.2f}x)",
        f"REST layer's own time (X-Gateway-Overhead-Ms): p50 {pct(overhead, 50) * 1e3:.2f} ms, "
        f"p99 {pct(overhead, 99) * 1e3:.2f} ms",
    ]


async def main(n: int, backlog: int, search_rows: int, search_only: bool) -> None:
    name = "bench" + secrets.token_hex(4)
    await _vhost(name, create=True)
    env = dict(os.environ) | {
        "GENHUB_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{name}",
        "GENHUB_MONGO_DB": name,
        "GENHUB_EVENTS_PREFIX": f"{name}:",
        "GENHUB_LOG_LEVEL": "WARNING",
    }
    print(f"GenHub benchmark - {machine()}")
    try:
        if not search_only:
            async with (
                devstack.running(
                    env, gateway_port=50151, taskstore_port=50152, rest_port=8180
                ) as stack,
                grpc.aio.insecure_channel(stack.gateway) as channel,
                store_client.connect(stack.taskstore) as store,
            ):
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                for line in await rest_versus_grpc(stub, stack.rest, 200):
                    print(" ", line)
                for line in await lifecycle(stub, store, n, parallel=32):
                    print(" ", line)
                for line in await priority(stub, store, backlog):
                    print(" ", line)
            for line in await prefetch_effect(name, 200):
                print(" ", line)
        if search_rows > 0:
            for line in await search(search_rows, name):
                print(" ", line)
    finally:
        await _vhost(name, create=False)
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient("mongodb://127.0.0.1:27017/")
        await client.drop_database(name)
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument(
        "--search-rows", type=int, default=100_000, help="tasks to search (0: skip)"
    )
    parser.add_argument("--search-only", action="store_true", help="only the search figure")
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.backlog, args.search_rows, args.search_only))
