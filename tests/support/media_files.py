"""Real media files made on the spot (Pillow, PyAV), broken copies of them, and a loopback
HTTP server that serves them the way a provider's CDN would."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from fractions import Fraction

import av
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A small image with some structure, in ``fmt`` (PNG, JPEG, WEBP, GIF)."""
    img = Image.new("RGB", size, (200, 40, 90))
    for x in range(size[0]):
        img.putpixel((x, x % size[1]), (x * 3 % 256, 255, 0))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def mp4_bytes(seconds: int = 1, fps: int = 10) -> bytes:
    """A tiny real MP4 (160x96 frames), ``seconds`` long."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(seconds * fps):
            still = Image.new("RGB", (160, 96), (i * 20 % 256, 0, 0))
            frame = av.VideoFrame.from_image(still)  # type: ignore[no-untyped-call]
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


async def padded_mp4(base: bytes, total: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    """``base`` followed by one ``free`` box, ``total`` bytes in all: a valid MP4 of any size,
    generated chunk by chunk (never in memory)."""
    yield base
    pad = total - len(base)
    yield pad.to_bytes(4, "big") + b"free"
    left = pad - 8
    zeros = bytes(chunk)
    while left > 0:
        n = min(chunk, left)
        yield zeros[:n]
        left -= n


HTML = b"<!DOCTYPE html><html><body><h1>Access denied</h1></body></html>"


def cdn_app(files: dict[str, bytes], big_size: int = 0, big_base: bytes = b"") -> Starlette:
    """A provider CDN: ``/f/<name>`` serves ``files``; ``/big.mp4`` streams a padded MP4 of
    ``big_size`` bytes; ``/html`` answers an HTML page with 200; ``/gone`` 404; ``/hop/<name>``
    redirects to ``/f/<name>``; ``/hop-private`` redirects to 10.1.2.3; ``/slow`` never ends."""

    async def file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return Response(b"not found", status_code=404)
        return Response(files[name], media_type="application/octet-stream")

    async def big(request: Request) -> Response:
        return StreamingResponse(
            padded_mp4(big_base, big_size),
            media_type="video/mp4",
            headers={"Content-Length": str(big_size)},
        )

    async def html(request: Request) -> Response:
        return Response(HTML, media_type="image/png")  # lies about its type, as CDNs do

    async def gone(request: Request) -> Response:
        return Response(b"<Error>NoSuchKey</Error>", status_code=404)

    async def hop(request: Request) -> Response:
        return RedirectResponse(f"/f/{request.path_params['name']}", status_code=302)

    async def hop_private(request: Request) -> Response:
        return RedirectResponse("http://10.1.2.3/x.png", status_code=302)

    return Starlette(
        routes=[
            Route("/f/{name}", file),
            Route("/big.mp4", big),
            Route("/html", html),
            Route("/gone", gone),
            Route("/hop/{name}", hop),
            Route("/hop-private", hop_private),
        ]
    )
