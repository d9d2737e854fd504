"""Prompt search (SearchTasks, SearchImages) and the image library (ListImages, GetImage,
DeleteImage) on the real stack: substrings in any script, ignoring case, user text matched
literally, filters, pagination that holds still while tasks are inserted, and the REST routes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest

from genhub.common.errors import InvalidArgument
from genhub.common.ids import new_id
from genhub.store.v1 import task_store_pb2
from genhub.taskstore import documents, lifecycle
from genhub.v1 import task_pb2, task_service_pb2
from tests.support.rest import client, shared_rest_stack
from tests.support.stack import Stack
from tests.support.tasks import S, get, image_request, text_request, violations, wait_status

__all__ = ["shared_rest_stack"]  # a fixture this module uses

T = task_service_pb2


@pytest.fixture
async def http(shared_rest_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the module's REST server."""
    async with client(shared_rest_stack) as opened:
        yield opened


def _user() -> str:
    """A user id of this test's own, so tests sharing the stack do not see each other's tasks."""
    return "s-" + secrets.token_hex(4)


async def _store(
    stack: Stack,
    prompt: str,
    user_id: str,
    kind: task_pb2.TaskType.ValueType = S.TASK_TYPE_IMAGE,
) -> task_pb2.Task:
    """A queued task stored straight into task-store's repository: no message, so no worker
    runs it and its status stays put."""
    task = task_pb2.Task(task_id=new_id(), user_id=user_id, type=kind, provider="demo")
    if kind == S.TASK_TYPE_IMAGE:
        task.model = "demo-image"
        task.image.CopyFrom(S.ImageSpec(prompt=prompt, size="256x256"))
    elif kind == S.TASK_TYPE_TEXT:
        task.model = "demo-text"
        task.text.CopyFrom(S.TextSpec(prompt=prompt))
    else:
        task.model = "demo-video"
        task.video.CopyFrom(S.VideoSpec(prompt=prompt, duration_seconds=2))
    doc = lifecycle.new_document(documents.to_document(task), documents.now())
    stored, created = await stack.taskstore.lifecycle.repository.insert(doc)
    assert created
    return documents.from_document(stored)


async def _search_all(stack: Stack, query: str, page_size: int = 50, **filters: Any) -> list[str]:
    """The ids of every page of SearchTasks."""
    ids: list[str] = []
    token = ""
    while True:
        page = await stack.tasks.SearchTasks(
            T.SearchTasksRequest(query=query, page_size=page_size, page_token=token, **filters)
        )
        ids += [t.task_id for t in page.tasks]
        token = page.next_page_token
        if not token:
            return ids


def _newest_first(tasks: list[task_pb2.Task]) -> list[str]:
    # Ids are time-ordered (milliseconds, then random bits): "newest first" is id order.
    return sorted((t.task_id for t in tasks), reverse=True)


async def test_substrings_in_chinese_and_english_ignoring_case(shared_rest_stack: Stack) -> None:
    stack, user = shared_rest_stack, _user()
    prompts = {
        "cat": "一只可爱的猫咪在花园里",
        "dog": "一只可爱的小狗在海边",
        "fox": "A Red Fox in the SNOW",
        "foxes": "two red foxes at dawn",
        "mixed": "Neon 城市 at night, 赛博朋克 style",
        "greek": "ΣΊΣΥΦΟΣ pushing a stone",
    }
    tasks = {key: await _store(stack, prompt, user) for key, prompt in prompts.items()}
    cases = {
        "可爱的猫": {"cat"},
        "可爱的": {"cat", "dog"},
        "花园": {"cat"},
        "red fox": {"fox", "foxes"},
        "RED FOX": {"fox", "foxes"},
        "rEd FoX": {"fox", "foxes"},
        "snow": {"fox"},
        "neon 城市": {"mixed"},
        "σίσυφος": {"greek"},  # Unicode case folding, final sigma included
        "  可爱的猫  ": {"cat"},  # surrounding whitespace is ignored
        "zebra": set(),
    }
    for query, keys in cases.items():
        got = await _search_all(stack, query, user_id=user)
        assert got == _newest_first([tasks[k] for k in keys]), query


async def test_user_text_is_matched_literally(shared_rest_stack: Stack) -> None:
    stack, user = shared_rest_stack, _user()
    prompts = {
        "dotstar": "glob a.*b here",
        "ab": "aXXb and ab",  # what a.*b would match as a pattern
        "paren": "smile :( sad",
        "bracket": "array[0] index",
        "backslash": "C:\\path\\to",
        "dollar": "costs $5 only",
        "braces": "x{2} y+ z? a|b ^top",
        "whitespace": "tab\there, line\nbreak",
        "many_a": "a" * 40 + "!",
    }
    tasks = {key: await _store(stack, prompt, user) for key, prompt in prompts.items()}
    cases = {
        ".*": {"dotstar"},
        "a.*b": {"dotstar"},
        ".": {"dotstar"},
        "(": {"paren"},
        ":(": {"paren"},
        "[": {"bracket"},
        "[0]": {"bracket"},
        "\\": {"backslash"},
        "\\path": {"backslash"},  # \p would be a Unicode class in a pattern
        "$": {"dollar"},
        "$5": {"dollar"},
        "x{2}": {"braces"},
        "y+ z?": {"braces"},
        "a|b": {"braces"},
        "^top": {"braces"},
        "^": {"braces"},
        "b\th": {"whitespace"},
        "line\nbreak": {"whitespace"},
        "(a+)+$": set(),  # a catastrophic-backtracking pattern, here only text
        "a" * 41: set(),
        "a" * 40 + "!": {"many_a"},
    }
    for query, keys in cases.items():
        got = await _search_all(stack, query, user_id=user)
        assert got == _newest_first([tasks[k] for k in keys]), repr(query)


async def test_filters_by_user_type_and_status(shared_rest_stack: Stack) -> None:
    stack, alice, bob = shared_rest_stack, _user(), _user()
    word = "sunset-" + secrets.token_hex(3)
    image = await _store(stack, f"{word} over the sea", alice)
    text = await _store(stack, f"a poem about a {word}", alice, S.TASK_TYPE_TEXT)
    video = await _store(stack, f"{word} timelapse", alice, S.TASK_TYPE_VIDEO)
    cancelled = await _store(stack, f"{word} city", alice)
    await stack.store.cancel(cancelled.task_id)
    others = await _store(stack, f"{word} by bob", bob)
    await _store(stack, "no match here", alice)

    def ids(*tasks: task_pb2.Task) -> list[str]:
        return _newest_first(list(tasks))

    assert await _search_all(stack, word) == ids(image, text, video, cancelled, others)
    assert await _search_all(stack, word, user_id=alice) == ids(image, text, video, cancelled)
    assert await _search_all(stack, word, user_id=bob) == ids(others)
    assert await _search_all(stack, word, user_id=alice, type=S.TASK_TYPE_IMAGE) == ids(
        image, cancelled
    )
    assert await _search_all(stack, word, type=S.TASK_TYPE_TEXT) == ids(text)
    assert await _search_all(stack, word, status=S.TASK_STATUS_CANCELLED) == ids(cancelled)
    assert await _search_all(
        stack, word, user_id=alice, type=S.TASK_TYPE_IMAGE, status=S.TASK_STATUS_QUEUED
    ) == ids(image)
    assert await _search_all(stack, word, user_id="nobody-" + secrets.token_hex(3)) == []


async def test_pages_hold_still_while_tasks_are_inserted(shared_rest_stack: Stack) -> None:
    stack, user = shared_rest_stack, _user()
    word = "page-" + secrets.token_hex(3)
    existing = [await _store(stack, f"{word} #{i}", user) for i in range(40)]
    for i in range(5):
        await _store(stack, f"unrelated #{i}", user)
    inserted: list[task_pb2.Task] = []

    async def insert_more(round_no: int) -> None:
        for i in range(3):
            inserted.append(await _store(stack, f"{word} new {round_no}.{i}", user))

    seen: list[str] = []
    token = ""
    rounds = 0
    while True:
        # Every page is read while new matching tasks are being inserted.
        page, _ = await asyncio.gather(
            stack.tasks.SearchTasks(
                T.SearchTasksRequest(query=word, user_id=user, page_size=7, page_token=token)
            ),
            insert_more(rounds),
        )
        seen += [t.task_id for t in page.tasks]
        rounds += 1
        token = page.next_page_token
        if not token:
            break

    assert rounds >= 6 and len(inserted) == 3 * rounds
    assert len(seen) == len(set(seen)), "a task was returned twice"
    before = {t.task_id for t in existing}
    assert [i for i in seen if i in before] == _newest_first(existing), "gap or disorder"
    # Tasks inserted while paging are newer than every page after the first one; they show up
    # (if at all) on the first page, never in the middle of the walk.
    new_ids = {t.task_id for t in inserted}
    assert all(i in new_ids for i in seen if i not in before)
    # A fresh search sees everything, newest first.
    assert await _search_all(stack, word, user_id=user) == _newest_first(existing + inserted)


async def test_image_routes_see_only_image_tasks(
    shared_rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    stack, user = shared_rest_stack, _user()
    word = "library-" + secrets.token_hex(3)
    images = [
        (await stack.tasks.CreateImageTask(image_request(f"{word} picture {i}", user_id=user))).task
        for i in range(3)
    ]
    texts = [
        (await stack.tasks.CreateTextTask(text_request(f"{word} essay {i}", user_id=user))).task
        for i in range(2)
    ]
    image_ids = _newest_first(images)

    listed: list[str] = []
    token = ""
    while True:
        page = await stack.tasks.ListImages(
            T.ListImagesRequest(user_id=user, page_size=2, page_token=token)
        )
        listed += [t.task_id for t in page.tasks]
        assert all(t.type == S.TASK_TYPE_IMAGE for t in page.tasks)
        token = page.next_page_token
        if not token:
            break
    assert listed == image_ids
    found = await stack.tasks.SearchImages(T.SearchImagesRequest(query=word, user_id=user))
    assert [t.task_id for t in found.tasks] == image_ids
    assert await _search_all(stack, word, user_id=user) == _newest_first(images + texts)

    got = await stack.tasks.GetImage(T.GetImageRequest(task_id=images[0].task_id))
    assert got.task.task_id == images[0].task_id and got.task.image.prompt.startswith(word)
    text_id = texts[0].task_id
    for call in (
        stack.tasks.GetImage(T.GetImageRequest(task_id=text_id)),
        stack.tasks.DeleteImage(T.DeleteImageRequest(task_id=text_id)),
        stack.tasks.GetImage(T.GetImageRequest(task_id="0" * 26)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await get(stack.tasks, text_id)).task_id == text_id  # the text task was kept

    # The same over REST.
    response = await http.get("/api/v1/images", params={"userId": user})
    assert response.status_code == 200, response.text
    assert [t["taskId"] for t in response.json()["tasks"]] == image_ids
    response = await http.get("/api/v1/images:search", params={"query": word, "userId": user})
    assert [t["taskId"] for t in response.json()["tasks"]] == image_ids
    response = await http.get(f"/api/v1/images/{images[1].task_id}")
    assert response.status_code == 200 and response.json()["type"] == "TASK_TYPE_IMAGE"
    response = await http.get(f"/api/v1/images/{text_id}")
    assert response.status_code == 404 and response.json()["code"] == 5
    response = await http.delete(f"/api/v1/images/{text_id}")
    assert response.status_code == 404

    deleted = await http.delete(f"/api/v1/images/{images[2].task_id}")
    assert deleted.status_code == 200 and deleted.json() == {}
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await get(stack.tasks, images[2].task_id)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND

    # Status filter of the library: the remaining images finish.
    for image in images[:2]:
        await wait_status(stack.tasks, image.task_id, {S.TASK_STATUS_SUCCEEDED})
    done = await stack.tasks.ListImages(
        T.ListImagesRequest(user_id=user, status=S.TASK_STATUS_SUCCEEDED)
    )
    assert [t.task_id for t in done.tasks] == _newest_first(images[:2])
    assert all(len(t.result.images) == 1 for t in done.tasks)


LONG = "x" * 201


@pytest.mark.parametrize(
    ("method", "request_message", "fields"),
    [
        ("SearchTasks", T.SearchTasksRequest(), {"query"}),
        ("SearchTasks", T.SearchTasksRequest(query=" \t\n "), {"query"}),
        ("SearchTasks", T.SearchTasksRequest(query=LONG), {"query"}),
        ("SearchTasks", T.SearchTasksRequest(query="cat", page_size=-1), {"page_size"}),
        ("SearchTasks", T.SearchTasksRequest(query="cat", type=99), {"type"}),  # type: ignore[arg-type]
        ("SearchTasks", T.SearchTasksRequest(query="cat", status=42), {"status"}),  # type: ignore[arg-type]
        ("SearchTasks", T.SearchTasksRequest(query="cat", page_token="not-ours!"), {"page_token"}),
        ("SearchTasks", T.SearchTasksRequest(query="", page_size=-5), {"query", "page_size"}),
        ("SearchImages", T.SearchImagesRequest(query=""), {"query"}),
        ("SearchImages", T.SearchImagesRequest(query=LONG, page_size=-1), {"query", "page_size"}),
        ("ListImages", T.ListImagesRequest(page_size=-1), {"page_size"}),
        ("ListImages", T.ListImagesRequest(status=42), {"status"}),  # type: ignore[arg-type]
        ("ListImages", T.ListImagesRequest(view=3), {"view"}),  # type: ignore[arg-type]
        ("ListTasks", T.ListTasksRequest(view=-1), {"view"}),  # type: ignore[arg-type]
        ("SearchTasks", T.SearchTasksRequest(query="cat", view=7), {"view"}),  # type: ignore[arg-type]
        ("SearchImages", T.SearchImagesRequest(query="cat", view=9), {"view"}),  # type: ignore[arg-type]
        ("GetImage", T.GetImageRequest(), {"task_id"}),
        ("DeleteImage", T.DeleteImageRequest(), {"task_id"}),
    ],
)
async def test_bad_requests_name_their_fields(
    shared_rest_stack: Stack, method: str, request_message: Any, fields: set[str]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await getattr(shared_rest_stack.tasks, method)(request_message)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(refused.value)) == fields


async def test_longest_query_is_accepted_and_the_store_checks_too(shared_rest_stack: Stack) -> None:
    stack = shared_rest_stack
    longest = " " + "y" * 200 + " "  # 200 characters once trimmed
    assert (await stack.tasks.SearchTasks(T.SearchTasksRequest(query=longest))).tasks == []
    with pytest.raises(InvalidArgument) as refused:
        await stack.store.search(task_store_pb2.SearchTasksRequest(query=LONG))
    assert [v.field for v in refused.value.violations] == ["query"]


async def test_rest_search(shared_rest_stack: Stack, http: httpx.AsyncClient) -> None:
    stack, user = shared_rest_stack, _user()
    cat = await _store(stack, "一只可爱的猫咪在花园里", user)
    kitten = await _store(stack, "可爱的猫 and a Red Fox", user)
    await _store(stack, "一只可爱的猫咪在写诗", user, S.TASK_TYPE_TEXT)

    url = "/api/v1/ai/tasks:search?query=" + quote("可爱的猫") + f"&userId={user}&pageSize=2"
    first = await http.get(url)
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["tasks"]) == 2 and body["nextPageToken"]
    rest = await http.get(url + "&pageToken=" + body["nextPageToken"])
    assert "nextPageToken" not in rest.json() and len(rest.json()["tasks"]) == 1

    images = await http.get(
        "/api/v1/ai/tasks:search",
        params={"query": "可爱的猫", "userId": user, "type": "TASK_TYPE_IMAGE"},
    )
    assert [t["taskId"] for t in images.json()["tasks"]] == _newest_first([cat, kitten])
    literal = await http.get("/api/v1/ai/tasks:search", params={"query": "猫.*", "userId": user})
    assert literal.json() == {}  # no match: an empty page
    fox = await http.get("/api/v1/ai/tasks:search", params={"query": "red fox", "user_id": user})
    assert [t["taskId"] for t in fox.json()["tasks"]] == [kitten.task_id]

    missing = await http.get("/api/v1/ai/tasks:search", params={"userId": user})
    assert missing.status_code == 400
    error = missing.json()
    assert error["code"] == 3
    bad = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert bad[0]["fieldViolations"] == [
        {"field": "query", "description": "is required and must not be blank"}
    ]
    too_long = await http.get("/api/v1/images:search", params={"query": LONG})
    assert too_long.status_code == 400 and "query" in too_long.json()["message"]
