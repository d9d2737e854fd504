"""A local fake of the OpenAI API (images, chat, Sora videos) for tests and ``make run``.

It speaks the wire format the official ``openai`` SDK expects (``shared/provider-apis.md`` §3):
``/v1/images/generations``, ``/v1/chat/completions``, ``/v1/videos`` (multipart create),
``/v1/videos/{id}`` (retrieve, delete) and ``/v1/videos/{id}/content``. JSON answers carry every
key the API sends, null where unset; errors are ``{"error": {message, type, param, code}}``;
every answer has an ``x-request-id``. Media is real: a PNG (or JPEG/WEBP) of the requested size,
served inline (base64) or from ``/media/...``, and a small valid MP4 (``openai_videos.py``).
Misbehaviour comes from prompt directives (``openai_faults.py``) or from faults injected per
route (:meth:`FakeOpenAI.inject`, or ``POST /_fake/faults``); ``GET /_fake/stats`` has counters.

Run it alone: ``python -m tests.fakes.openai --port 8091`` (base URL ``http://HOST:PORT/v1``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import secrets
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from genhub.providers.demo.render import render_png
from tests.fakes.openai_faults import (
    QUOTA,
    Directives,
    Fault,
    error_response,
    invalid,
    missing,
    parse,
    refusal,
    within,
)
from tests.fakes.openai_videos import VideoStore

GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
DALL_E_3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_NULLS: dict[str, Any] = {
    "refusal": None,
    "annotations": [],
    "tool_calls": None,
    "function_call": None,
}


@dataclass
class Seen:
    """One request the fake received (``body``: parsed JSON or multipart fields;
    ``client_port``: the connection's port, so tests can see connection reuse)."""

    route: str
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    request_id: str
    client_port: int


def image_bytes(prompt: str, size: str, fmt: str, transparent: bool) -> bytes:
    """A real image: the demo renderer's PNG, converted to ``fmt``, with alpha if asked."""
    width, height = (int(x) for x in (size if size != "auto" else "1024x1024").split("x"))
    png = render_png(prompt, width, height, 7)
    if fmt == "png" and not transparent:
        return png
    image: Image.Image = Image.open(io.BytesIO(png))
    if transparent and fmt in ("png", "webp"):
        image = image.convert("RGBA")
        image.putalpha(200)
    out = io.BytesIO()
    image.save(out, format="JPEG" if fmt == "jpeg" else fmt.upper())
    return out.getvalue()


def _masked(key: str) -> str:
    return f"{key[:3]}{'*' * max(4, len(key) - 7)}{key[-4:]}"


def _form(content_type: str, raw: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            form[name] = payload if part.get_filename() else payload.decode()
    return form


class _QuietServer(uvicorn.Server):
    """uvicorn that leaves signal handling to whoever runs the event loop (a test run or the
    devstack), instead of taking SIGINT/SIGTERM for itself while it serves."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class FakeOpenAI:
    """The fake server. Tests read ``counts`` (requests per route, plus ``video.submitted`` and
    ``video.deleted``), ``calls`` (every request, oldest first), ``count(route, contains)`` and
    ``videos.jobs``.

    Args:
        api_keys: Keys accepted as ``Authorization: Bearer``; None accepts any non-empty key.
        render_seconds: How long a video job takes.
    """

    def __init__(
        self, *, api_keys: Collection[str] | None = None, render_seconds: float = 0.4
    ) -> None:
        self.api_keys = set(api_keys) if api_keys is not None else None
        self.counts: Counter[str] = Counter()
        self.calls: list[Seen] = []
        self.videos = VideoStore(self.counts, render_seconds)
        self.base_url = ""
        self._prompt_calls: Counter[tuple[str, str]] = Counter()
        self._faults: dict[str, list[Fault]] = {}
        self._media: dict[str, tuple[bytes, str]] = {}
        self._server: _QuietServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self.app = Starlette(
            routes=[
                self._api("/v1/images/generations", "images", "POST", self._images),
                self._api("/v1/chat/completions", "chat", "POST", self._chat),
                self._api("/v1/videos", "video.create", "POST", self._video_create),
                self._api("/v1/videos/{video_id}", "video.retrieve", "GET", self._video_get),
                self._api("/v1/videos/{video_id}", "video.delete", "DELETE", self._video_delete),
                self._api(
                    "/v1/videos/{video_id}/content", "video.content", "GET", self._video_content
                ),
                Route("/media/{name}", self._media_file, methods=["GET"]),
                Route("/_fake/faults", self._inject_endpoint, methods=["POST"]),
                Route("/_fake/stats", self._stats, methods=["GET"]),
            ]
        )

    # --- control -------------------------------------------------------------------------

    def inject(self, route: str, fault: Fault, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``route`` (``"video.retrieve"``) with ``fault``."""
        self._faults.setdefault(route, []).extend([fault] * times)

    def requests(self, route: str) -> list[Seen]:
        """The requests received on ``route``, oldest first."""
        return [s for s in self.calls if s.route == route]

    def count(self, route: str, contains: str = "") -> int:
        """How many ``route`` requests whose body mentions ``contains`` were answered."""
        return sum(1 for s in self.requests(route) if contains in json.dumps(s.body, default=str))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns the base URL, ending in ``/v1``."""
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = _QuietServer(config)
        self._serving = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._serving.done() or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenAI fake did not start on {host}:{port}")
            await asyncio.sleep(0.01)
        bound = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        self._server = self._serving = None

    # --- plumbing --------------------------------------------------------------------------

    def _api(
        self,
        path: str,
        name: str,
        method: str,
        handler: Callable[[Request, Seen], Awaitable[Response]],
    ) -> Route:
        """A route that records the request, checks the key, applies injected faults and
        stamps ``x-request-id``."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            kind = request.headers.get("content-type", "")
            body: Any = {}
            if kind.startswith("multipart/form-data"):
                body = _form(kind, raw)
            elif raw:
                with contextlib.suppress(ValueError):
                    body = json.loads(raw)
            seen = Seen(
                name,
                request.method,
                request.url.path,
                {k.lower(): v for k, v in request.headers.items()},
                body if isinstance(body, dict) else {},
                time.monotonic(),
                f"req_{secrets.token_hex(12)}",
                request.client.port if request.client else 0,
            )
            self.calls.append(seen)
            self.counts[name] += 1
            denied = self._check_auth(request)
            injected = self._faults.get(name)
            if denied is not None:
                response: Response = error_response(denied, seen.request_id)
            elif injected:
                response = error_response(injected.pop(0), seen.request_id)
            else:
                response = await handler(request, seen)
            response.headers["x-request-id"] = seen.request_id
            return response

        return Route(path, endpoint, methods=[method])

    def _check_auth(self, request: Request) -> Fault | None:
        header = request.headers.get("authorization", "")
        key = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if not key:
            return Fault.of(
                401,
                code=None,
                message="You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if self.api_keys is not None and key not in self.api_keys:
            return Fault.of(
                401,
                message=f"Incorrect API key provided: {_masked(key)}. You can find your API "
                "key at https://platform.openai.com/account/api-keys.",
            )
        return None

    async def _misbehave(
        self, seen: Seen, prompt: str, model: str
    ) -> tuple[Directives, int, Fault | None]:
        """Apply a prompt's directives: returns them, this call's number and a fault, if any."""
        wanted = parse(prompt)
        self._prompt_calls[(seen.route, prompt)] += 1
        call = self._prompt_calls[(seen.route, prompt)]
        if wanted.sleep_ms and within(wanted.sleep_times, call):
            await asyncio.sleep(wanted.sleep_ms / 1000)
        fault = None
        if wanted.quota:
            fault = QUOTA
        elif wanted.refuse:
            fault = refusal(model)
        elif wanted.fail is not None and within(wanted.fail_times, call):
            fault = Fault.of(
                wanted.fail, retry_after=wanted.retry_after, retry_after_ms=wanted.retry_after_ms
            )
            if wanted.code:
                fault = dataclasses.replace(fault, code=wanted.code)
        return wanted, call, fault

    # --- images ----------------------------------------------------------------------------

    async def _images(self, request: Request, seen: Seen) -> Response:
        body = seen.body
        model, prompt = str(body.get("model") or ""), str(body.get("prompt") or "")
        if not prompt:
            return error_response(missing("prompt"), seen.request_id)
        wanted, call, fault = await self._misbehave(seen, prompt, model)
        gpt_image = model.startswith("gpt-image")
        size = str(body.get("size") or ("auto" if gpt_image else "1024x1024"))
        n = int(body.get("n") or 1)
        fmt = str(body.get("output_format") or "png")
        fault = fault or self._check_image(model, body, size, n, fmt)
        if fault is not None:
            return error_response(fault, seen.request_id)
        created = int(time.time())
        if wanted.empty and within(wanted.empty_times, call):
            return JSONResponse({"created": created, "data": []})
        transparent = body.get("background") == "transparent"
        b64 = gpt_image or body.get("response_format") == "b64_json"
        data = []
        for i in range(n):
            blob = await asyncio.to_thread(image_bytes, f"{prompt} #{i}", size, fmt, transparent)
            item: dict[str, Any] = {"b64_json": None, "url": None, "revised_prompt": None}
            if b64:
                item["b64_json"] = base64.b64encode(blob).decode()
            else:
                name = f"img-{secrets.token_hex(8)}.{fmt}"
                self._media[name] = (blob, _MIME[fmt])
                item["url"] = f"{str(request.base_url).rstrip('/')}/media/{name}"
            if model == "dall-e-3":
                item["revised_prompt"] = f"A picture of {prompt}"
            data.append(item)
        answer: dict[str, Any] = {"created": created, "data": data}
        if gpt_image:
            words = len(prompt.split())
            answer |= {
                "background": "transparent" if transparent else "opaque",
                "output_format": fmt,
                "quality": body.get("quality") or "high",
                "size": size if size != "auto" else "1024x1024",
                "usage": {
                    "input_tokens": words,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": words},
                    "output_tokens": 1056 * n,
                    "total_tokens": words + 1056 * n,
                },
            }
        return JSONResponse(answer)

    @staticmethod
    def _check_image(model: str, body: dict[str, Any], size: str, n: int, fmt: str) -> Fault | None:
        """The API's own parameter checks for the two documented models."""
        quality = body.get("quality")
        if model.startswith("gpt-image"):
            if body.get("response_format") is not None:
                return invalid(
                    "Unknown parameter: 'response_format'.", "response_format", "unknown_parameter"
                )
            if size not in GPT_IMAGE_SIZES:
                return invalid(
                    f"Invalid size '{size}'; use one of {list(GPT_IMAGE_SIZES)}.", "size"
                )
            if quality not in (None, "low", "medium", "high", "auto"):
                return invalid(f"Invalid quality '{quality}'.", "quality")
            if not 1 <= n <= 10:
                return invalid("n must be between 1 and 10.", "n")
            if fmt not in _MIME:
                return invalid(f"Invalid output_format '{fmt}'.", "output_format")
            return None
        if model == "dall-e-3":
            if size not in DALL_E_3_SIZES:
                return invalid(f"'{size}' is not one of {list(DALL_E_3_SIZES)} - 'size'", "size")
            if n != 1:
                return invalid("You must provide n=1 for this model.", "n")
            if quality not in (None, "standard", "hd"):
                return invalid(f"Invalid quality '{quality}'.", "quality")
        if body.get("response_format") not in (None, "url", "b64_json"):
            return invalid("Invalid response_format.", "response_format")
        return None

    async def _media_file(self, request: Request) -> Response:
        found = self._media.get(request.path_params["name"])
        if found is None:
            return Response(b"not found", status_code=404)
        return Response(found[0], media_type=found[1])

    # --- chat ------------------------------------------------------------------------------

    async def _chat(self, request: Request, seen: Seen) -> Response:
        body = seen.body
        model = str(body.get("model") or "")
        messages = body.get("messages") or []
        if not model or not messages:
            return error_response(missing("messages" if model else "model"), seen.request_id)
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        wanted, call, fault = await self._misbehave(seen, prompt, model)
        if fault is not None:
            return error_response(fault, seen.request_id)
        answer: dict[str, Any] = {
            "id": f"chatcmpl-{secrets.token_hex(8)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
            "service_tier": "default",
        }
        if wanted.empty and within(wanted.empty_times, call):
            return JSONResponse(answer | {"choices": [], "usage": None})
        words = f"Fake answer to: {messages[-1].get('content', '')}".split()
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if limit and len(words) > int(limit):
            words, finish = words[: int(limit)], "length"
        message = {"role": "assistant", "content": " ".join(words)} | _NULLS
        used = len(prompt.split())
        return JSONResponse(
            answer
            | {
                "choices": [
                    {"index": 0, "finish_reason": finish, "logprobs": None, "message": message}
                ],
                "usage": {
                    "prompt_tokens": used,
                    "completion_tokens": len(words),
                    "total_tokens": used + len(words),
                },
            }
        )

    # --- videos ----------------------------------------------------------------------------

    async def _video_create(self, request: Request, seen: Seen) -> Response:
        prompt = str(seen.body.get("prompt") or "")
        if not prompt:
            return error_response(missing("prompt"), seen.request_id)
        model = str(seen.body.get("model") or "sora-2")
        wanted, call, fault = await self._misbehave(seen, prompt, model)
        if fault is not None:
            return error_response(fault, seen.request_id)
        return self.videos.create(seen.body, wanted, call, seen.request_id)

    async def _video_get(self, request: Request, seen: Seen) -> Response:
        return self.videos.retrieve(request.path_params["video_id"], seen.request_id)

    async def _video_delete(self, request: Request, seen: Seen) -> Response:
        return self.videos.delete(request.path_params["video_id"], seen.request_id)

    async def _video_content(self, request: Request, seen: Seen) -> Response:
        variant = request.query_params.get("variant", "video")
        return await self.videos.content(request.path_params["video_id"], variant, seen.request_id)

    # --- control endpoints -----------------------------------------------------------------

    async def _inject_endpoint(self, request: Request) -> Response:
        """``POST /_fake/faults {"route", "status", "times"?, "code"?, "message"?,
        "retry_after"?}``."""
        spec = await request.json()
        fields = {k: spec[k] for k in ("code", "message", "retry_after") if k in spec}
        self.inject(
            str(spec["route"]), Fault.of(int(spec["status"]), **fields), int(spec.get("times", 1))
        )
        return JSONResponse({"injected": spec})

    async def _stats(self, request: Request) -> Response:
        return JSONResponse({"counts": dict(self.counts), "videos": len(self.videos.jobs)})


async def _serve(host: str, port: int) -> None:
    fake = FakeOpenAI()
    url = await fake.start(host, port)
    print(f"OpenAI fake serving at {url} (any API key is accepted)", flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await stopping.wait()
    finally:
        await fake.stop()


def main() -> None:
    """``python -m tests.fakes.openai [--host H] [--port N]``."""
    parser = argparse.ArgumentParser(prog="tests.fakes.openai", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
