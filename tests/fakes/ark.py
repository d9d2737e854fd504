"""A fake Volcengine Ark data plane (provider-apis.md §1): Seedream images, Doubao chat and
Seedance video tasks under ``/api/v3``, for the official ``volcengine-ark-runtime`` SDK.

- ``Authorization: Bearer <api_key>`` is checked (401 ``AuthenticationError`` otherwise).
- Bodies are read the way Ark reads them: ``null`` means absent (the SDK sends every optional
  field as null), unknown keys are ignored, a missing ``model``/``prompt``/``messages``/
  ``content`` is a 400 ``MissingParameter.<name>``.
- Errors use Ark's envelope ``{"error": {"code", "message", "param", "type"}}`` with the request
  id in the message and the ``x-request-id`` header; 429s may carry ``Retry-After``.
- Images come back as URLs served by this fake or as base64: real PNGs of the requested size
  ("1K"/"2K"/"4K" are 1024/2048/4096 squares). Videos are small real MP4s of the requested ratio.
- Video tasks walk queued -> running -> succeeded on the clock (``[queued:MS]``,
  ``[render:MS]``); DELETE cancels a queued task, refuses a running one, and deletes a finished
  one (later GETs answer 404), as Ark's docs describe.

Prompt directives (``directives.py``) inject failures. Operations recorded in ``calls``:
``images``, ``chat``, ``create``, ``get``, ``delete``, ``list``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes import directives
from tests.fakes.server import FakeServer, cli_parser, mp4, png, serve_forever

DEFAULT_API_KEY = "fake-ark-key"
PREFIX = "/api/v3"
_DEFAULT_CODES = {
    400: ("InvalidParameter", "BadRequest", "The parameter is invalid."),
    401: (
        "AuthenticationError",
        "Unauthorized",
        "The API key or AK/SK in the request is missing or invalid.",
    ),
    403: ("AccessDenied", "Forbidden", "You do not have access to this resource."),
    404: ("InvalidEndpointOrModel.NotFound", "NotFound", "The model or endpoint does not exist."),
    429: (
        "RateLimitExceeded.EndpointRPMExceeded",
        "TooManyRequests",
        "The request has exceeded the RPM limit of the endpoint.",
    ),
    500: ("InternalServiceError", "InternalServerError", "The service encountered an error."),
    503: ("ServiceUnavailable", "ServiceUnavailable", "The service is temporarily unavailable."),
}
_KEYWORD_SIZES = {"1k": 1024, "2k": 2048, "4k": 4096}
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


def _request_id() -> str:
    return "0217" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def _present(body: dict[str, Any], key: str) -> Any:
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
        if self.cancelled:
            return "cancelled"
        elapsed = (time.monotonic() - self.created) * 1000
        if elapsed < self.wants.queued_ms:
            return "queued"
        if elapsed < self.wants.queued_ms + self.wants.render_ms:
            return "running"
        return "failed" if self.wants.job_fails else "succeeded"


class FakeArk(FakeServer):
    """Ark's images, chat and content-generation endpoints.

    Args:
        api_key: The one Bearer token accepted.
    """

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_keys = {api_key}  # more may be accepted (``accept``), like a second project key
        self.jobs: dict[str, Job] = {}

    def routes(self) -> Sequence[BaseRoute]:
        """Ark's data-plane routes."""
        tasks = f"{PREFIX}/contents/generations/tasks"
        return [
            Route(f"{PREFIX}/images/generations", self._images, methods=["POST"]),
            Route(f"{PREFIX}/chat/completions", self._chat, methods=["POST"]),
            Route(tasks, self._create, methods=["POST"]),
            Route(tasks, self._list, methods=["GET"]),
            Route(tasks + "/{task_id}", self._get, methods=["GET"]),
            Route(tasks + "/{task_id}", self._delete, methods=["DELETE"]),
        ]

    def accept(self, api_key: str) -> None:
        """Accept another API key too."""
        self.api_keys.add(api_key)

    def _key_ok(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme == "Bearer" and key in self.api_keys

    def job(self, contains: str) -> Job:
        """The (single) job whose prompt contains ``contains``."""
        (found,) = [j for j in self.jobs.values() if contains in j.prompt]
        return found

    # -- envelope -------------------------------------------------------------------------------

    def error(
        self,
        status: int,
        code: str = "",
        message: str = "",
        *,
        param: str = "",
        retry_after: str = "",
    ) -> JSONResponse:
        """Ark's error envelope, with the request id in the message and the header."""
        default_code, kind, default_message = _DEFAULT_CODES.get(
            status, ("InternalServiceError", "InternalServerError", "Error.")
        )
        request_id = _request_id()
        headers = {"x-request-id": request_id}
        if retry_after:
            headers["retry-after"] = retry_after
        body = {
            "error": {
                "code": code or default_code,
                "message": f"{message or default_message} Request id: {request_id}",
                "param": param,
                "type": kind,
            }
        }
        return JSONResponse(body, status_code=status, headers=headers)

    def ok(self, body: dict[str, Any]) -> JSONResponse:
        """A 200 with a fresh request id."""
        return JSONResponse(body, headers={"x-request-id": _request_id()})

    async def _open(
        self, request: Request, op: str, prompt_of: Any
    ) -> tuple[dict[str, Any], str, directives.Directives, int] | Response:
        """Auth, JSON, directives: the body, prompt, directives and request number, or the
        error response to send."""
        if not self._key_ok(request):
            self.record(op, "", 401)
            return self.error(401)
        try:
            body = await request.json()
        except ValueError:
            self.record(op, "", 400)
            return self.error(400, "InvalidParameter", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.error(400, "InvalidParameter", "The request body must be an object.")
        prompt = prompt_of(body)
        wants = directives.parse(prompt)
        seen = self.seen(op, prompt)
        delay = wants.sleeps(seen)
        if delay:
            await asyncio.sleep(delay)
        if wants.fails(seen):
            self.record(op, prompt, wants.status)
            return self.error(wants.status, wants.code, retry_after=wants.retry_after)
        if wants.refuse:
            self.record(op, prompt, 400)
            return self.error(
                400,
                "InputTextSensitiveContentDetected",
                "The request failed because the input text may contain sensitive information.",
            )
        return body, prompt, wants, seen

    def _missing(self, op: str, body: dict[str, Any], *names: str) -> Response | None:
        for name in names:
            if _present(body, name) in (None, "", []):
                self.record(op, "", 400)
                return self.error(
                    400,
                    f"MissingParameter.{name}",
                    f"The request failed because it is missing the `{name}` parameter.",
                    param=name,
                )
        return None

    # -- images ---------------------------------------------------------------------------------

    async def _images(self, request: Request) -> Response:
        opened = await self._open(request, "images", lambda b: str(b.get("prompt") or ""))
        if isinstance(opened, Response):
            return opened
        body, prompt, wants, seen = opened
        if missing := self._missing("images", body, "model", "prompt"):
            return missing
        model = str(body["model"])
        refs = _present(body, "image")
        refs = [refs] if isinstance(refs, str) else list(refs or [])
        if refs and "3-0-t2i" in model:
            self.record("images", prompt, 400)
            return self.error(
                400,
                "InvalidParameter",
                f"The model {model} does not support `image`.",
                param="image",
            )
        for ref in refs:
            if not _valid_image_ref(ref):
                self.record("images", prompt, 400)
                return self.error(
                    400, "InvalidImageURL.InvalidFormat", "The image is not valid.", param="image"
                )
        size = str(_present(body, "size") or ("1024x1024" if "3-0" in model else "2048x2048"))
        dims = _image_size(size)
        if dims is None:
            self.record("images", prompt, 400)
            return self.error(
                400, "InvalidParameter", f"The size {size} is not valid.", param="size"
            )
        width, height = dims
        count = 1
        if _present(body, "sequential_image_generation") == "auto":
            options = _present(body, "sequential_image_generation_options") or {}
            count = int(options.get("max_images") or 15)
        detail = {
            k: body.get(k)
            for k in ("model", "size", "seed", "guidance_scale", "watermark", "response_format")
        }
        detail["images"] = len(refs)
        self.record("images", prompt, 200, **detail)
        data: list[dict[str, Any]] = []
        if not wants.empty(seen):
            picture = await asyncio.to_thread(png, prompt, width, height)
            for _ in range(count):
                if _present(body, "response_format") == "b64_json":
                    data.append({"b64_json": base64.b64encode(picture).decode(), "size": size})
                else:
                    url = self.store_media(request, picture, "image/png", ".png")
                    data.append({"url": url, "size": f"{width}x{height}"})
        return self.ok(
            {
                "model": model,
                "created": int(time.time()),
                "data": data,
                "usage": {
                    "generated_images": len(data),
                    "output_tokens": len(data) * 4096,
                    "total_tokens": len(data) * 4096,
                },
            }
        )

    # -- chat -----------------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        def prompt_of(body: dict[str, Any]) -> str:
            messages = body.get("messages") or []
            return "\n".join(str(m.get("content") or "") for m in messages if isinstance(m, dict))

        opened = await self._open(request, "chat", prompt_of)
        if isinstance(opened, Response):
            return opened
        body, prompt, wants, seen = opened
        if missing := self._missing("chat", body, "model", "messages"):
            return missing
        max_tokens = _present(body, "max_tokens")
        words = f"Fake Doubao answer to: {prompt}".split()
        finish = "stop"
        if max_tokens and len(words) > int(max_tokens):
            words, finish = words[: int(max_tokens)], "length"
        text = "" if wants.empty(seen) else " ".join(words)
        self.record(
            "chat",
            prompt,
            200,
            **{k: body.get(k) for k in ("model", "max_tokens", "temperature", "top_p")},
        )
        prompt_tokens = len(prompt.split())
        return self.ok(
            {
                "id": _request_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "service_tier": "default",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": finish,
                        "logprobs": None,
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt_tokens + len(text.split()),
                    "prompt_tokens_details": {"cached_tokens": 0},
                },
            }
        )

    # -- content generation tasks (Seedance) ----------------------------------------------------

    async def _create(self, request: Request) -> Response:
        def prompt_of(body: dict[str, Any]) -> str:
            items = body.get("content") or []
            texts = [
                str(i.get("text") or "")
                for i in items
                if isinstance(i, dict) and i.get("type") == "text"
            ]
            return "\n".join(texts)

        opened = await self._open(request, "create", prompt_of)
        if isinstance(opened, Response):
            return opened
        body, prompt, wants, _ = opened
        if missing := self._missing("create", body, "model", "content"):
            return missing
        commands = dict(_COMMAND.findall(prompt))
        params = {
            "resolution": _present(body, "resolution")
            or commands.get("rs")
            or commands.get("resolution")
            or "720p",
            "ratio": _present(body, "ratio") or commands.get("rt") or "16:9",
            "duration": int(_present(body, "duration") or commands.get("dur") or 5),
            "seed": int(_present(body, "seed") or commands.get("seed") or 42),
        }
        job = Job(
            id=f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}",
            model=str(body["model"]),
            prompt=prompt,
            params=params,
            wants=wants,
        )
        self.jobs[job.id] = job
        self.record("create", prompt, 200, job_id=job.id, **params)
        return self.ok({"id": job.id})

    async def _task_object(self, request: Request, job: Job) -> dict[str, Any]:
        status = job.status()
        content = None
        if status == "succeeded" and not job.wants.empty_times:
            if not job.video_url:
                width, height = _VIDEO_SIZES.get(job.params["ratio"], (256, 144))
                video = await asyncio.to_thread(
                    mp4, job.prompt, width, height, job.params["duration"]
                )
                job.video_url = self.store_media(request, video, "video/mp4", ".mp4")
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

    def _authorised(self, request: Request, op: str) -> Response | None:
        if not self._key_ok(request):
            self.record(op, "", 401)
            return self.error(401)
        return None

    async def _get(self, request: Request) -> Response:
        if denied := self._authorised(request, "get"):
            return denied
        job = self.jobs.get(request.path_params["task_id"])
        if job is None:
            self.record("get", "", 404)
            return self.error(404, "NotFound", "The specified task does not exist.")
        self.record("get", job.prompt, 200, job_id=job.id, job_status=job.status())
        return self.ok(await self._task_object(request, job))

    async def _delete(self, request: Request) -> Response:
        if denied := self._authorised(request, "delete"):
            return denied
        job = self.jobs.get(request.path_params["task_id"])
        if job is None:
            self.record("delete", "", 404)
            return self.error(404, "NotFound", "The specified task does not exist.")
        status = job.status()
        if status in ("running", "cancelled"):
            self.record("delete", job.prompt, 400, job_id=job.id, job_status=status)
            return self.error(
                400, "InvalidParameter", f"A {status} task cannot be cancelled or deleted."
            )
        if status == "queued":
            job.cancelled = True
        else:
            del self.jobs[job.id]
        self.record("delete", job.prompt, 200, job_id=job.id, job_status=status)
        return self.ok({})

    async def _list(self, request: Request) -> Response:
        if denied := self._authorised(request, "list"):
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
        self.record("list", "", 200)
        return self.ok(
            {"total": len(items), "items": [await self._task_object(request, j) for j in chosen]}
        )


def _image_size(size: str) -> tuple[int, int] | None:
    keyword = _KEYWORD_SIZES.get(size.lower())
    if keyword:
        return keyword, keyword
    width, _, height = size.lower().partition("x")
    if width.isdigit() and height.isdigit() and 0 < int(width) <= 4096 and 0 < int(height) <= 4096:
        return int(width), int(height)
    return None


def _valid_image_ref(ref: Any) -> bool:
    if not isinstance(ref, str):
        return False
    if ref.startswith("data:image/"):
        header, _, data = ref.partition(",")
        if not header.endswith(";base64") or header != header.lower():
            return False
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True
    return ref.startswith(("https://", "http://"))


def main() -> None:
    """``python -m tests.fakes.ark --port N [--api-key KEY]``."""
    parser = cli_parser(__doc__ or "fake Ark")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args()
    serve_forever(FakeArk(args.api_key), args.host, args.port)


if __name__ == "__main__":
    main()
