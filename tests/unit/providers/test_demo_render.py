"""Unit tests for the demo provider's offline PNG / MP4 renderer."""

from __future__ import annotations

import io

import av
import pytest
from PIL import Image

from genhub.providers.demo import render
from genhub.providers.demo.render import render_png, render_video

PROMPT = "A lighthouse on a cliff at sunset, oil painting"
CHINESE_PROMPT = "一只在月光下奔跑的狐狸，水墨画风格，高清，细节丰富"  # noqa: RUF001


def _open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def _decode_mp4(data: bytes) -> tuple[str, int, int, int]:
    """(codec name, width, height, number of decoded frames)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        assert "mp4" in container.format.name
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert frames
        sizes = {(frame.width, frame.height) for frame in frames}
        assert len(sizes) == 1
        ((width, height),) = sizes
        return stream.codec_context.name, width, height, len(frames)


# ------------------------------------------------------------------------------------ PNG


@pytest.mark.parametrize(
    ("width", "height"), [(512, 512), (640, 360), (333, 777), (1, 1), (7, 4096)]
)
def test_png_decodes_with_requested_size_and_mode(width: int, height: int) -> None:
    data = render_png(PROMPT, width, height, seed=1)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = _open_png(data)
    assert image.size == (width, height)
    assert image.mode == "RGB"


def test_png_is_deterministic() -> None:
    assert render_png(PROMPT, 256, 192, seed=42) == render_png(PROMPT, 256, 192, seed=42)


def test_png_differs_for_different_prompts_and_seeds() -> None:
    base = render_png(PROMPT, 256, 192, seed=42)
    other_prompt = render_png(PROMPT + "!", 256, 192, seed=42)
    other_seed = render_png(PROMPT, 256, 192, seed=43)
    assert len({base, other_prompt, other_seed}) == 3
    # Different pixels, not just different metadata.
    pixels = {_open_png(data).tobytes() for data in (base, other_prompt, other_seed)}
    assert len(pixels) == 3


def test_png_background_colours_depend_on_the_seed() -> None:
    corners = set()
    for seed in range(4):
        image = _open_png(render_png("same prompt", 64, 64, seed=seed))
        corners.add(image.getpixel((0, 0)))
    assert len(corners) > 1


def test_png_draws_the_prompt() -> None:
    with_text = _open_png(render_png(PROMPT, 320, 240, seed=5))
    without_text = _open_png(render_png("", 320, 240, seed=5))
    # An empty prompt hashes differently, so compare the amount of near-white text pixels instead.
    assert _white_pixels(with_text) > _white_pixels(without_text) + 100


def _white_pixels(image: Image.Image) -> int:
    histogram = image.convert("L").point(lambda v: 255 if v >= 250 else 0).histogram()
    return histogram[255]


def test_png_chinese_prompt() -> None:
    data = render_png(CHINESE_PROMPT, 640, 480, seed=7)
    image = _open_png(data)
    assert image.size == (640, 480)
    assert data == render_png(CHINESE_PROMPT, 640, 480, seed=7)
    assert data != render_png(CHINESE_PROMPT + "。", 640, 480, seed=7)


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "   \n\t  ",
        "x" * 5000,
        "word " * 2000,
        "中文" * 3000,
        "tab\tnew\nline\r\nnul\x00bell\x07 emoji 🦊🌕 rtl שלום مرحبا",
        "lone surrogate \ud800 here",
    ],
)
def test_png_handles_awkward_prompts(prompt: str) -> None:
    for width, height in ((96, 64), (5, 5)):
        image = _open_png(render_png(prompt, width, height, seed=0))
        assert image.size == (width, height)


@pytest.mark.parametrize("seed", [0, -1, 2**64, -(2**80)])
def test_png_accepts_any_int_seed(seed: int) -> None:
    assert _open_png(render_png(PROMPT, 32, 32, seed=seed)).size == (32, 32)


@pytest.mark.parametrize(
    ("width", "height", "name"),
    [
        (0, 10, "width"),
        (-5, 10, "width"),
        (4097, 10, "width"),
        (10, 0, "height"),
        (10, 5000, "height"),
    ],
)
def test_png_rejects_bad_sizes(width: int, height: int, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        render_png(PROMPT, width, height, seed=1)


def test_png_accepts_the_maximum_dimension() -> None:
    assert _open_png(render_png(PROMPT, 4096, 8, seed=1)).size == (4096, 8)


# ------------------------------------------------------------------------------------ MP4


def test_video_decodes_to_expected_frames_and_size() -> None:
    data = render_video(PROMPT, 320, 240, duration_seconds=2, seed=3)
    assert data[4:8] == b"ftyp"
    codec, width, height, frames = _decode_mp4(data)
    assert codec in {"h264", "mpeg4"}
    assert (width, height) == (320, 240)
    assert frames == 2 * 4


def test_video_854x480_five_seconds() -> None:
    data = render_video(PROMPT, 854, 480, duration_seconds=5, seed=9)
    assert _decode_mp4(data)[1:] == (854, 480, 20)


def test_video_custom_fps_and_duration() -> None:
    data = render_video(PROMPT, 160, 96, duration_seconds=3, seed=3, fps=10)
    assert _decode_mp4(data)[1:] == (160, 96, 30)
    with av.open(io.BytesIO(data), mode="r") as container:
        assert container.streams.video[0].average_rate == 10
        assert container.duration is not None
        assert container.duration == pytest.approx(3 * av.time_base, rel=0.05)


def test_video_rounds_odd_sizes_up_to_even() -> None:
    data = render_video(PROMPT, 161, 95, duration_seconds=1, seed=3)
    assert _decode_mp4(data)[1:] == (162, 96, 4)


def test_video_frames_differ() -> None:
    data = render_video(PROMPT, 160, 96, duration_seconds=1, seed=3)
    with av.open(io.BytesIO(data), mode="r") as container:
        frames = [b"".join(map(bytes, frame.planes)) for frame in container.decode(video=0)]
    assert len(frames) == 4
    assert len(set(frames)) == 4


def test_video_is_deterministic_and_depends_on_inputs() -> None:
    first = render_video(PROMPT, 160, 96, duration_seconds=1, seed=3)
    assert first == render_video(PROMPT, 160, 96, duration_seconds=1, seed=3)
    assert first != render_video(PROMPT, 160, 96, duration_seconds=1, seed=4)
    assert first != render_video(PROMPT + "?", 160, 96, duration_seconds=1, seed=3)


def test_video_chinese_prompt() -> None:
    data = render_video(CHINESE_PROMPT, 320, 180, duration_seconds=1, seed=7)
    assert _decode_mp4(data)[1:] == (320, 180, 4)


def test_video_tiny_size() -> None:
    data = render_video(PROMPT, 1, 1, duration_seconds=1, seed=7, fps=1)
    assert _decode_mp4(data)[1:] == (2, 2, 1)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width": 0}, "width"),
        ({"width": 4097}, "width"),
        ({"height": -2}, "height"),
        ({"height": 4098}, "height"),
        ({"duration_seconds": 0}, "duration_seconds"),
        ({"duration_seconds": 10_000}, "duration_seconds"),
        ({"fps": 0}, "fps"),
        ({"fps": 1000}, "fps"),
    ],
)
def test_video_rejects_bad_arguments(kwargs: dict[str, int], name: str) -> None:
    args: dict[str, int] = {"width": 64, "height": 64, "duration_seconds": 1, "seed": 1, "fps": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        render_video(PROMPT, **args)


def test_video_mpeg4_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    # The codec used when the PyAV build has no libx264 encoder.
    monkeypatch.setattr(render, "video_codec", lambda: "mpeg4")
    data = render_video(PROMPT, 320, 240, duration_seconds=2, seed=3)
    assert _decode_mp4(data) == ("mpeg4", 320, 240, 8)
    assert data == render_video(PROMPT, 320, 240, duration_seconds=2, seed=3)


def test_video_codec_is_h264_or_mpeg4() -> None:
    assert render.video_codec() in {"libx264", "mpeg4"}
