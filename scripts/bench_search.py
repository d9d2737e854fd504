"""The prompt-search figure of ``make bench``: p50/p95 search latency over many stored tasks.

Stores ``rows`` tasks straight into a scratch database with pymongo and searches them through
a task-store (and once through a gateway) run in this process, and compares two alternatives
on the database itself.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from genhub.common import store_client
from genhub.common.ids import new_id
from genhub.store.v1 import task_store_pb2, task_store_pb2_grpc
from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

S = task_pb2


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


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
    from genhub.taskstore import documents, lifecycle

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
        doc = lifecycle.new_document(documents.to_document(task), documents.now())
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
    from genhub.taskstore.mongo_task_repository import literal_pattern

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
            taskstore_listen="127.0.0.1:0",
            mongo_db=database,
            events_prefix=f"{database}:",
            amqp_url=SecretStr(f"amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        )
        async with contextlib.AsyncExitStack() as stack:
            # (a) the product: SearchTasks of task-store.
            port = (await stack.enter_async_context(taskstore_app.running(store_settings))).port
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
