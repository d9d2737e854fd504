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
  one (later GETs answer 404), as Ark's docs describe (``ark_tasks.py``).

Prompt directives (``directives.py``) inject failures. Operations recorded in ``calls``:
``images``, ``chat``, ``create``, ``get``, ``delete``, ``list``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes import directives
from tests.fakes.ark_tasks import ArkTasks, Job, present, request_id
from tests.fakes.server import FakeServer, cli_parser, png, serve_forever

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


class FakeArk(FakeServer):
    """Ark's images, chat and content-generation endpoints.

    Args:
        api_key: The one Bearer token accepted.
    """

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_keys = {api_key}  # more may be accepted (``accept``), like a second project key
        self.tasks = ArkTasks(self)

    def routes(self) -> Sequence[BaseRoute]:
        """Ark's data-plane routes."""
        return [
            Route(f"{PREFIX}/images/generations", self._images, methods=["POST"]),
            Route(f"{PREFIX}/chat/completions", self._chat, methods=["POST"]),
            *self.tasks.routes(f"{PREFIX}/contents/generations/tasks"),
        ]

    def accept(self, api_key: str) -> None:
        """Accept another API key too."""
        self.api_keys.add(api_key)

    def _key_ok(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme == "Bearer" and key in self.api_keys

    def authorised(self, request: Request, op: str) -> Response | None:
        """None, or the 401 to answer a request without a valid key."""
        if not self._key_ok(request):
            self.record(op, "", 401)
            return self.error(401)
        return None

    def job(self, contains: str) -> Job:
        """The (single) video job whose prompt contains ``contains``."""
        (found,) = [j for j in self.tasks.jobs.values() if contains in j.prompt]
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
        rid = request_id()
        headers = {"x-request-id": rid}
        if retry_after:
            headers["retry-after"] = retry_after
        body = {
            "error": {
                "code": code or default_code,
                "message": f"{message or default_message} Request id: {rid}",
                "param": param,
                "type": kind,
            }
        }
        return JSONResponse(body, status_code=status, headers=headers)

    def ok(self, body: dict[str, Any]) -> JSONResponse:
        """A 200 with a fresh request id."""
        return JSONResponse(body, headers={"x-request-id": request_id()})

    async def open_request(
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

    def missing(self, op: str, body: dict[str, Any], *names: str) -> Response | None:
        for name in names:
            if present(body, name) in (None, "", []):
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
        opened = await self.open_request(request, "images", lambda b: str(b.get("prompt") or ""))
        if isinstance(opened, Response):
            return opened
        body, prompt, wants, seen = opened
        if missing := self.missing("images", body, "model", "prompt"):
            return missing
        model = str(body["model"])
        refs = present(body, "image")
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
        size = str(present(body, "size") or ("1024x1024" if "3-0" in model else "2048x2048"))
        dims = _image_size(size)
        if dims is None:
            self.record("images", prompt, 400)
            return self.error(
                400, "InvalidParameter", f"The size {size} is not valid.", param="size"
            )
        width, height = dims
        count = 1
        if present(body, "sequential_image_generation") == "auto":
            options = present(body, "sequential_image_generation_options") or {}
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
                if present(body, "response_format") == "b64_json":
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

        opened = await self.open_request(request, "chat", prompt_of)
        if isinstance(opened, Response):
            return opened
        body, prompt, wants, seen = opened
        if missing := self.missing("chat", body, "model", "messages"):
            return missing
        max_tokens = present(body, "max_tokens")
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
                "id": request_id(),
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
