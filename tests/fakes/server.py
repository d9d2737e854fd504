"""What every fake provider server shares: uvicorn in the caller's event loop, a record of the
calls answered, per-(operation, prompt) counters for directives, real media served by URL, and a
CLI runner."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from genhub.providers.demo.render import render_png, render_video

# Above this many pixels the demo renderer takes a second or more; a plain image is enough.
_RENDER_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Recorded:
    """One request a fake answered."""

    op: str  # e.g. "images", "chat", "create", "get", "delete", "submit", "result"
    prompt: str
    status: int
    at: float  # time.monotonic()
    detail: dict[str, Any] = field(default_factory=dict)


def png(prompt: str, width: int, height: int) -> bytes:
    """A real PNG of exactly ``width`` x ``height``."""
    if width * height <= _RENDER_LIMIT:
        return render_png(prompt or "fake", width, height, seed=7)
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def mp4(prompt: str, width: int, height: int, seconds: int = 1) -> bytes:
    """A small real MP4 (4 frames per second)."""
    return render_video(prompt or "fake", width, height, max(1, min(seconds, 2)), seed=7, fps=4)


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals stay with whoever runs the event loop


class FakeServer:
    """Base class: subclasses give ``routes()``; this serves them plus ``/media/{name}`` and
    ``/_fake/calls`` (the record, as JSON, for fakes run from the CLI)."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []
        self.base_url = ""
        self._seen: Counter[tuple[str, str]] = Counter()
        self._media: dict[str, tuple[bytes, str]] = {}
        self._server: _Quiet | None = None
        self._serving: asyncio.Task[None] | None = None

    # -- what subclasses provide and use --------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        """The provider's own routes."""
        raise TypeError(f"{type(self).__name__} must define routes()")

    def seen(self, op: str, prompt: str) -> int:
        """Count one more request of ``op`` with ``prompt``; returns its number (1-based)."""
        self._seen[(op, prompt)] += 1
        return self._seen[(op, prompt)]

    def record(self, op: str, prompt: str, status: int, **detail: Any) -> None:
        """Remember an answered request."""
        self.calls.append(Recorded(op, prompt, status, time.monotonic(), detail))

    def store_media(self, request: Request, data: bytes, mime: str, extension: str) -> str:
        """Keep ``data`` and return the URL this fake serves it at."""
        name = secrets.token_hex(8) + extension
        self._media[name] = (data, mime)
        return f"{str(request.base_url).rstrip('/')}/media/{name}"

    # -- what tests use ---------------------------------------------------------------------------

    def count(self, op: str, contains: str = "", *, status: int | None = None) -> int:
        """How many ``op`` requests whose prompt contains ``contains`` were answered."""
        return len(self.matching(op, contains, status=status))

    def matching(self, op: str, contains: str = "", *, status: int | None = None) -> list[Recorded]:
        """The recorded ``op`` requests whose prompt contains ``contains``."""
        return [
            c
            for c in self.calls
            if c.op == op and contains in c.prompt and (status is None or c.status == status)
        ]

    def media(self, url: str) -> bytes:
        """The bytes behind a media URL this fake handed out."""
        return self._media[url.rsplit("/", 1)[-1]][0]

    # -- lifecycle ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                *self.routes(),
                Route("/media/{name}", self._serve_media, methods=["GET"]),
                Route("/_fake/calls", self._serve_calls, methods=["GET"]),
            ]
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port) in this event loop; returns the base URL."""
        config = uvicorn.Config(
            self.app(),
            host=host,
            port=port,
            lifespan="off",
            ws="none",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = _Quiet(config)
        self._server = server
        self._serving = asyncio.create_task(server.serve())
        while not server.started:
            if self._serving.done():
                self._serving.result()
                raise RuntimeError("fake server stopped during startup")
            await asyncio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving (idempotent); requests still sleeping are cut off after a second."""
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        self._server = self._serving = None

    async def _serve_media(self, request: Request) -> Response:
        found = self._media.get(request.path_params["name"])
        if found is None:
            return Response(b"not found", status_code=404)
        data, mime = found
        return Response(data, media_type=mime)

    async def _serve_calls(self, request: Request) -> Response:
        return JSONResponse(
            [{"op": c.op, "prompt": c.prompt, "status": c.status} for c in self.calls]
        )


def cli_parser(description: str) -> argparse.ArgumentParser:
    """The options every fake's CLI takes (``--host``, ``--port``); fakes add their own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    return parser


def serve_forever(fake: FakeServer, host: str, port: int) -> None:
    """Serve ``fake`` until interrupted, printing its URL once it listens."""

    async def serve() -> None:
        url = await fake.start(host, port)
        print(f"{type(fake).__name__} serving on {url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fake.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
