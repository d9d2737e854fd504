"""Offline, deterministic media renderer for the ``demo`` provider.

The demo provider stands in for a real image/video generation model in ``make run``, demos and
load tests. Everything here is pure CPU work on in-memory buffers: no network, no files, no
model weights. The same arguments always give the same bytes (for a given Pillow / PyAV build).

* :func:`render_png` draws a two-colour diagonal gradient (colours derived from
  ``sha256(prompt, seed)``), a few translucent discs and the prompt, word-wrapped, in Pillow's
  built-in font (Aileron, embedded in Pillow, so there is nothing to download or install).
* :func:`render_video` draws the same kind of frame once and animates a disc and a progress bar
  across it, encoding the result as an MP4 with PyAV (the FFmpeg bundled in its wheel).
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

import av
from PIL import Image, ImageChops, ImageDraw, ImageFont

__all__ = [
    "MAX_DIMENSION",
    "MAX_DURATION_SECONDS",
    "MAX_FPS",
    "render_png",
    "render_video",
    "video_codec",
]

MAX_DIMENSION = 4096
"""Largest accepted ``width`` / ``height``, in pixels."""

MAX_DURATION_SECONDS = 120
"""Longest accepted ``duration_seconds`` for :func:`render_video`."""

MAX_FPS = 60
"""Highest accepted ``fps`` for :func:`render_video`."""

PNG_COMPRESS_LEVEL = 2
"""zlib level for PNGs: about as fast as level 1, ~6% smaller; level 6 is ~50% slower."""

_MAX_PROMPT_CHARS = 1000
"""Only this many characters of the prompt are drawn; more would not be legible anyway."""

_MIN_FONT_SIZE = 8
_HASH_DOMAIN = b"genhub.providers.demo.render/v1\x00"

# Ideographs, kana, hangul and full-width forms: scripts that do not separate words with spaces,
# so a line may break between any two of these characters.
_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0003ffff"
)
_TOKEN_RE = re.compile(rf"[ ]+|[{_CJK}]|[^ {_CJK}]+")

# PyAV's stub leaves VideoFrame.from_image unannotated; give it a type without a call-site ignore
# (which `mypy --strict` would flag as unused once the stub is fixed).
_frame_from_image: Callable[[Image.Image], av.VideoFrame] = av.VideoFrame.from_image

_Font: TypeAlias = ImageFont.FreeTypeFont | ImageFont.ImageFont
_RGB: TypeAlias = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def render_png(prompt: str, width: int, height: int, seed: int) -> bytes:
    """Render a deterministic placeholder image for ``prompt`` as PNG bytes.

    The image is an 8-bit RGB PNG of exactly ``width`` x ``height`` pixels: a diagonal gradient
    between two colours derived from ``sha256(prompt, seed)``, a few translucent discs placed by
    the same hash, and the prompt text drawn centred and word-wrapped in Pillow's default font
    (``ImageFont.load_default(size=...)``), sized to the image and shrunk until it fits. Text
    that still does not fit at the smallest size is cut and ends in ``...``, and only the first
    1000 characters of the prompt are drawn (a longer prompt also ends in ``...``). CJK text
    wraps between characters; glyphs missing from the default font (CJK among them) are drawn
    as boxes. Control characters are dropped and unpaired surrogates replaced, so any ``str`` is
    accepted. A small ``GenHub demo / seed N`` footer is drawn when the image is big enough.

    The same arguments always yield identical bytes (with the same Pillow build). Any ``int``
    seed is accepted, including negative ones.

    Raises:
        TypeError: ``width`` or ``height`` is not an ``int``.
        ValueError: ``width`` or ``height`` is not in ``1..4096``; the message names the argument.
    """
    _check_int("width", width, 1, MAX_DIMENSION)
    _check_int("height", height, 1, MAX_DIMENSION)
    image = _draw_still(prompt, width, height, seed)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def render_video(
    prompt: str,
    width: int,
    height: int,
    duration_seconds: int,
    seed: int,
    fps: int = 4,
) -> bytes:
    """Render a deterministic placeholder video for ``prompt`` as MP4 bytes.

    The video holds exactly ``duration_seconds * fps`` frames at a constant ``fps``. Every frame
    is the :func:`render_png` picture for the same arguments with a disc that travels from left
    to right and a progress bar along the bottom edge, so consecutive frames differ. There is
    no audio track.

    Codec: H.264 (``libx264``, ``yuv420p``, ``preset=veryfast``, ``crf=28``, one encoder thread)
    when the installed PyAV build can encode it, otherwise MPEG-4 Part 2 (``mpeg4``); see
    :func:`video_codec`. Both are encoded single-threaded with fixed settings, so identical
    arguments yield identical bytes on any machine that has the same PyAV/FFmpeg build (x264's
    output depends on its thread count, hence the fixed single thread). The ``moov`` index is
    written at the end of the file (``faststart`` needs to reopen the output by name, which an
    in-memory buffer cannot do); players fetch it with a range request, and the files are small.

    Odd sizes are **rounded up** to the next even number, because 4:2:0 chroma subsampling
    needs even dimensions: ``render_video(p, 853, 479, ...)`` returns an 854x480 video.
    ``width``/``height`` are validated before rounding, and 4096 is even, so the output never
    exceeds 4096x4096.

    Raises:
        TypeError: an integer argument is not an ``int``.
        ValueError: ``width`` or ``height`` is not in ``1..4096``, ``duration_seconds`` is not in
            ``1..120`` or ``fps`` is not in ``1..60``; the message names the argument.
    """
    _check_int("width", width, 1, MAX_DIMENSION)
    _check_int("height", height, 1, MAX_DIMENSION)
    _check_int("duration_seconds", duration_seconds, 1, MAX_DURATION_SECONDS)
    _check_int("fps", fps, 1, MAX_FPS)
    width += width % 2
    height += height % 2

    base = _draw_still(prompt, width, height, seed)
    palette = _Palette.from_digest(_digest(prompt, seed))
    n_frames = duration_seconds * fps
    codec = video_codec()

    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps, options=_encoder_options(codec))
        if not isinstance(stream, av.VideoStream):  # pragma: no cover - narrows the type
            raise TypeError(f"{codec} did not give a video stream")
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        ctx = stream.codec_context
        ctx.thread_count = 1  # x264 output depends on the thread count; pin it for determinism.
        if codec == "mpeg4":
            ctx.bit_rate = max(200_000, width * height * fps // 4)
        for index in range(n_frames):
            picture = _draw_frame(base, palette, index, n_frames)
            frame = _frame_from_image(picture)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


@functools.cache
def video_codec() -> str:
    """The FFmpeg encoder :func:`render_video` uses: ``libx264`` if available, else ``mpeg4``."""
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        return name
    raise RuntimeError("this PyAV build can encode neither libx264 nor mpeg4 video")


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Palette:
    start: _RGB
    end: _RGB
    accent: _RGB
    discs: tuple[tuple[float, float, float, _RGB], ...]  # (cx, cy, radius) as fractions, colour

    @classmethod
    def from_digest(cls, digest: bytes) -> _Palette:
        hue = int.from_bytes(digest[0:2], "big") / 65536
        shift = 0.2 + digest[2] / 255 * 0.3  # second hue 72..180 degrees away: always contrasts
        start = _hsv(hue, 0.55 + digest[3] / 255 * 0.3, 0.55 + digest[4] / 255 * 0.3)
        end = _hsv(hue + shift, 0.55 + digest[5] / 255 * 0.3, 0.35 + digest[6] / 255 * 0.3)
        accent = _hsv(hue + 0.5, 0.35, 1.0)
        discs = tuple(
            (
                digest[8 + 4 * i] / 255,
                digest[9 + 4 * i] / 255,
                0.08 + digest[10 + 4 * i] / 255 * 0.22,
                _hsv(hue + digest[11 + 4 * i] / 255, 0.5, 1.0),
            )
            for i in range(3)
        )
        return cls(start=start, end=end, accent=accent, discs=discs)


def _draw_still(prompt: str, width: int, height: int, seed: int) -> Image.Image:
    palette = _Palette.from_digest(_digest(prompt, seed))
    image = _gradient(width, height, palette.start, palette.end)
    draw = ImageDraw.Draw(image, "RGBA")
    short = min(width, height)
    for cx, cy, r, (red, green, blue) in palette.discs:
        x, y, radius = cx * width, cy * height, r * short
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(red, green, blue, 56))

    footer_size = max(_MIN_FONT_SIZE, short // 40)
    show_footer = height >= 64 and width >= 96
    text_bottom = height - (2 * footer_size if show_footer else 0)
    _draw_prompt(draw, _clean(prompt), width, text_bottom)
    if show_footer:
        font = _font(footer_size)
        label = f"GenHub demo / seed {seed}"
        if font.getlength(label) > width - footer_size:
            label = "GenHub demo"
        draw.text(
            (width - footer_size // 2, height - footer_size // 2),
            label,
            font=font,
            anchor="rd",
            fill=(255, 255, 255, 170),
        )
    return image


def _gradient(width: int, height: int, start: _RGB, end: _RGB) -> Image.Image:
    """A top-left -> bottom-right blend from ``start`` to ``end``.

    Blended at 256x256 (the size of Pillow's built-in gradients) and then resized: a linear ramp
    survives bilinear scaling, and this is about twice as fast as blending at full size.
    """
    vertical = Image.linear_gradient("L")  # black at the top, white at the bottom
    horizontal = vertical.transpose(Image.Transpose.ROTATE_90)  # black left, white right
    mask = ImageChops.add(vertical, horizontal, scale=2.0)
    side = vertical.size
    small = Image.composite(Image.new("RGB", side, end), Image.new("RGB", side, start), mask)
    return small.resize((width, height), Image.Resampling.BILINEAR)


def _draw_prompt(draw: ImageDraw.ImageDraw, text: str, width: int, bottom: int) -> None:
    if not text or width < 8 or bottom < 8:
        return
    margin = max(2, min(width, bottom) // 12)
    max_width = max(1, width - 2 * margin)
    max_height = max(1, bottom - 2 * margin)

    size = max(_MIN_FONT_SIZE, min(width, bottom) // 12)
    while True:
        font = _font(size)
        line_height = round(size * 1.25)
        max_lines = max(1, max_height // line_height)
        lines = _wrap(text, font, max_width, max_lines + 1)
        if len(lines) <= max_lines or size == _MIN_FONT_SIZE:
            break
        size = max(_MIN_FONT_SIZE, size * 4 // 5)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _ellipsize(lines[-1], font, max_width)

    stroke = max(1, size // 14)
    top = (bottom - line_height * len(lines)) // 2 + (line_height - size) // 2
    for i, line in enumerate(lines):
        draw.text(
            (width / 2, top + i * line_height),
            line,
            font=font,
            anchor="ma",
            fill=(255, 255, 255, 255),
            stroke_width=stroke,
            stroke_fill=(0, 0, 0, 160),
        )


def _draw_frame(base: Image.Image, palette: _Palette, index: int, n_frames: int) -> Image.Image:
    frame = base.copy()
    width, height = frame.size
    draw = ImageDraw.Draw(frame, "RGBA")
    progress = (index + 1) / n_frames
    bar = max(2, height // 60)
    draw.rectangle((0, height - bar, width * progress, height), fill=(*palette.accent, 230))
    radius = max(2, min(width, height) // 14)
    travel = (index / (n_frames - 1)) if n_frames > 1 else 0.5
    x = radius + travel * (width - 2 * radius)
    y = height - bar - radius - max(2, height // 40)
    draw.ellipse(
        (x - radius, y - radius, x + radius, y + radius),
        fill=(*palette.accent, 220),
        outline=(0, 0, 0, 140),
        width=max(1, radius // 8),
    )
    return frame


# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _font(size: int) -> _Font:
    # load_default(size=...) base64-decodes and parses the embedded font on every call: cache it.
    return ImageFont.load_default(size=size)


def _clean(prompt: str) -> str:
    """Drawable text: surrogates replaced, whitespace runs collapsed, other controls dropped."""
    text = prompt[: _MAX_PROMPT_CHARS * 2].encode("utf-8", "replace").decode("utf-8")
    paragraphs = []
    for raw in text.splitlines():
        kept = "".join(
            " " if ch.isspace() else ch
            for ch in raw
            if ch.isspace() or not unicodedata.category(ch).startswith("C")
        )
        paragraphs.append(" ".join(kept.split()))
    cleaned = "\n".join(p for p in paragraphs if p)
    if len(cleaned) > _MAX_PROMPT_CHARS or len(prompt) > _MAX_PROMPT_CHARS * 2:
        cleaned = cleaned[:_MAX_PROMPT_CHARS].rstrip() + "..."
    return cleaned


def _wrap(text: str, font: _Font, max_width: int, max_lines: int) -> list[str]:
    """Greedy wrap at spaces and between CJK characters; returns at most ``max_lines`` lines.

    A line's width is taken as the sum of its tokens' widths (cached per call), which ignores
    kerning across token boundaries - a pixel or two, well inside the margin - and keeps long
    prompts linear instead of re-measuring the growing line for every token.
    """
    widths: dict[str, float] = {}

    def measure(token: str) -> float:
        if token not in widths:
            widths[token] = font.getlength(token)
        return widths[token]

    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, line_width = "", 0.0
        for token in _TOKEN_RE.findall(paragraph):
            if len(lines) >= max_lines:
                return lines[:max_lines]
            if token.isspace() and not line:
                continue  # no leading spaces on a line
            token_width = measure(token)
            if line_width + token_width <= max_width:
                line, line_width = line + token, line_width + token_width
                continue
            if line.strip():
                lines.append(line.rstrip())
            line, line_width = "", 0.0
            if token.isspace():
                continue
            if token_width <= max_width:
                line, line_width = token, token_width
                continue
            for ch in token:  # a single word wider than the line: break it between characters
                ch_width = measure(ch)
                if line and line_width + ch_width > max_width:
                    lines.append(line)
                    line, line_width = "", 0.0
                line, line_width = line + ch, line_width + ch_width
        if line.strip():
            lines.append(line.rstrip())
    return lines[:max_lines]


def _ellipsize(line: str, font: _Font, max_width: int) -> str:
    line = line.rstrip()
    while line and font.getlength(line + "...") > max_width:
        line = line[:-1].rstrip()
    return line + "..."


# --------------------------------------------------------------------------------------------
# Misc
# --------------------------------------------------------------------------------------------


def _digest(prompt: str, seed: int) -> bytes:
    material = _HASH_DOMAIN + str(seed).encode("ascii") + b"\x00"
    return hashlib.sha256(material + prompt.encode("utf-8", "surrogatepass")).digest()


def _hsv(hue: float, saturation: float, value: float) -> _RGB:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _encoder_options(codec: str) -> dict[str, str]:
    if codec == "libx264":
        return {"preset": "veryfast", "crf": "28"}
    return {}


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
