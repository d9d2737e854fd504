"""The fake Ark's Seedance video tasks: ``/contents/generations/tasks`` create, get, list and
delete (provider-apis.md §1.7), kept by :class:`ArkTasks` for :class:`tests.fakes.ark.FakeArk`.

Tasks walk queued -> running -> succeeded on the clock (``[queued:MS]``, ``[render:MS]``;
``[jobfail]`` ends failed, ``[empty]`` succeeds without a video URL). Output settings are read
from the top-level fields and from the older ``--rs/--rt/--dur/--seed`` text commands alike.
DELETE cancels a queued task, refuses a running or cancelled one, and deletes a finished one
(later GETs answer 404).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes import directives
from tests.fakes.server import mp4

if TYPE_CHECKING:
    from tests.fakes.ark import FakeArk

_VIDEO_SIZES = {
    "16:9": (256, 144),
    "9:16": (144, 256),
    "1:1": (144, 144),
    "4:3": (192, 144),
    "3:4": (144, 192),
    "21:9": (336, 144),
    "adaptive": (256, 144),
}
_COMMAND = re.compile(r"--(rs|rt|dur|seed|fps|wm|cf|resolution|ratio|duration)\s+(\S+)")


def request_id() -> str:
    """A request id shaped like Ark's."""
    return "0217" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def present(body: dict[str, Any], key: str) -> Any:
    """A field's value, with JSON null meaning absent (as Ark reads it)."""
    return body.get(key)


@dataclass
class Job:
    """A content-generation task as the fake keeps it."""

    id: str
    model: str
    prompt: str
    params: dict[str, Any]
    wants: directives.Directives
    created: float = field(default_factory=time.monotonic)
    created_at: int = field(default_factory=lambda: int(time.time()))
    cancelled: bool = False
    video_url: str = ""

    def status(self) -> str:
        """Where the task is now."""
        if self.cancelled:
            return "cancelled"
        elapsed = (time.monotonic() - self.created) * 1000
        if elapsed < self.wants.queued_ms:
            return "queued"
        if elapsed < self.wants.queued_ms + self.wants.render_ms:
            return "running"
        return "failed" if self.wants.job_fails else "succeeded"


class ArkTasks:
    """The content-generation tasks of one fake Ark."""

    def __init__(self, ark: FakeArk) -> None:
        self._ark = ark
        self.jobs: dict[str, Job] = {}

    def routes(self, path: str) -> Sequence[BaseRoute]:
        """The four task routes under ``path``."""
        return [
            Route(path, self._create, methods=["POST"]),
            Route(path, self._list, methods=["GET"]),
            Route(path + "/{task_id}", self._get, methods=["GET"]),
            Route(path + "/{task_id}", self._delete, methods=["DELETE"]),
        ]

    async def _create(self, request: Request) -> Response:
        def prompt_of(body: dict[str, Any]) -> str:
            items = body.get("content") or []
            texts = [
                str(i.get("text") or "")
                for i in items
                if isinstance(i, dict) and i.get("type") == "text"
            ]
            return "\n".join(texts)

        opened = await self._ark.open_request(request, "create", prompt_of)
        if isinstance(opened, Response):
            return opened
        body, prompt, wants, _ = opened
        if missing := self._ark.missing("create", body, "model", "content"):
            return missing
        commands = dict(_COMMAND.findall(prompt))
        params = {
            "resolution": present(body, "resolution")
            or commands.get("rs")
            or commands.get("resolution")
            or "720p",
            "ratio": present(body, "ratio") or commands.get("rt") or "16:9",
            "duration": int(present(body, "duration") or commands.get("dur") or 5),
            "seed": int(present(body, "seed") or commands.get("seed") or 42),
        }
        job = Job(
            id=f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}",
            model=str(body["model"]),
            prompt=prompt,
            params=params,
            wants=wants,
        )
        self.jobs[job.id] = job
        self._ark.record("create", prompt, 200, job_id=job.id, **params)
        return self._ark.ok({"id": job.id})

    async def _task_object(self, request: Request, job: Job) -> dict[str, Any]:
        status = job.status()
        content = None
        if status == "succeeded" and not job.wants.empty_times:
            if not job.video_url:
                width, height = _VIDEO_SIZES.get(job.params["ratio"], (256, 144))
                video = await asyncio.to_thread(
                    mp4, job.prompt, width, height, job.params["duration"]
                )
                job.video_url = self._ark.store_media(request, video, "video/mp4", ".mp4")
            content = {"video_url": job.video_url}
        elif status == "succeeded":
            content = {"video_url": ""}
        error = None
        if status == "failed":
            error = {"code": "InternalServiceError", "message": "The video generation failed."}
        return {
            "id": job.id,
            "model": job.model,
            "status": status,
            "content": content,
            "error": error,
            "seed": job.params["seed"],
            "resolution": job.params["resolution"],
            "ratio": job.params["ratio"],
            "duration": job.params["duration"],
            "framespersecond": 24,
            "service_tier": "default",
            "execution_expires_after": 172800,
            "usage": {"completion_tokens": 108900, "total_tokens": 108900}
            if status == "succeeded"
            else None,
            "created_at": job.created_at,
            "updated_at": int(time.time()),
        }

    async def _get(self, request: Request) -> Response:
        if denied := self._ark.authorised(request, "get"):
            return denied
        job = self.jobs.get(request.path_params["task_id"])
        if job is None:
            self._ark.record("get", "", 404)
            return self._ark.error(404, "NotFound", "The specified task does not exist.")
        self._ark.record("get", job.prompt, 200, job_id=job.id, job_status=job.status())
        return self._ark.ok(await self._task_object(request, job))

    async def _delete(self, request: Request) -> Response:
        if denied := self._ark.authorised(request, "delete"):
            return denied
        job = self.jobs.get(request.path_params["task_id"])
        if job is None:
            self._ark.record("delete", "", 404)
            return self._ark.error(404, "NotFound", "The specified task does not exist.")
        status = job.status()
        if status in ("running", "cancelled"):
            self._ark.record("delete", job.prompt, 400, job_id=job.id, job_status=status)
            return self._ark.error(
                400, "InvalidParameter", f"A {status} task cannot be cancelled or deleted."
            )
        if status == "queued":
            job.cancelled = True
        else:
            del self.jobs[job.id]
        self._ark.record("delete", job.prompt, 200, job_id=job.id, job_status=status)
        return self._ark.ok({})

    async def _list(self, request: Request) -> Response:
        if denied := self._ark.authorised(request, "list"):
            return denied
        query = request.query_params
        wanted_ids = set(query.getlist("filter.task_ids"))
        items = [
            job
            for job in self.jobs.values()
            if (not wanted_ids or job.id in wanted_ids)
            and (not query.get("filter.status") or job.status() == query["filter.status"])
            and (not query.get("filter.model") or job.model == query["filter.model"])
        ]
        page = max(1, int(query.get("page_num") or 1))
        size = min(500, max(1, int(query.get("page_size") or 10)))
        chosen = items[(page - 1) * size : page * size]
        self._ark.record("list", "", 200)
        return self._ark.ok(
            {"total": len(items), "items": [await self._task_object(request, j) for j in chosen]}
        )
