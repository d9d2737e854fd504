"""What a downloaded file really is: its type from its magic bytes, then the format's own
integrity checks, reading headers and structure only (never decoding a whole image or video
into memory).

A provider that answers an HTML error page with status 200, or a connection cut mid-file, must
not become a "succeeded" task: every failure here is ``RetryableMediaError(INVALID)``.
Formats: PNG, JPEG, WebP, GIF images (Pillow); MP4 / QuickTime video (ISO BMFF box walk, and
PyAV for the duration).
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genhub.media import _errors as errors

Kind = Literal["image", "video"]
_HEAD = 64


@dataclass(frozen=True)
class Inspection:
    """What a file is: MIME type, the extension GenHub stores it under, pixel size (images and
    videos), duration in seconds (videos; 0.0 when the container does not say)."""

    mime: str
    ext: str
    width: int = 0
    height: int = 0
    duration: float = 0.0

    @property
    def kind(self) -> Kind:
        """``image`` or ``video``."""
        return "video" if self.mime.startswith("video/") else "image"


def _invalid(message: str) -> errors.RetryableMediaError:
    return errors.RetryableMediaError(message, code=errors.INVALID)


def _describe(head: bytes) -> str:
    text = head.lstrip().lower()
    if not head:
        return "an empty body"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if text.startswith((b"<?xml", b"<error")):
        return "an XML document (an error response?)"
    if text.startswith((b"{", b"[")):
        return "JSON (an error response?)"
    return f"an unknown file type (starts with {head[:8].hex()})"


def sniff(head: bytes) -> tuple[str, str] | None:
    """(MIME type, extension) from a file's first bytes, or None when it is no type we keep."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", ".jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", ".webp"
    if head[4:8] == b"ftyp":
        if head[8:12] == b"qt  ":
            return "video/quicktime", ".mov"
        return "video/mp4", ".mp4"
    return None


def inspect_file(path: Path, expect: Kind | None = None) -> Inspection:
    """Identify and check ``path``; ``expect`` the kind the task asked for.

    Raises RetryableMediaError(INVALID) for anything else (HTML, truncated, wrong kind) and
    PermanentMediaError(TOO_LARGE) for an image over Pillow's decompression-bomb limit.
    Blocking (file I/O): run it in a thread from async code.
    """
    with path.open("rb") as f:
        head = f.read(_HEAD)
    found = sniff(head)
    if found is None:
        raise _invalid(f"expected {expect or 'an image or video'}, got {_describe(head)}")
    mime, ext = found
    if expect is not None and not mime.startswith(expect + "/"):
        raise _invalid(f"expected {expect}, got {mime}")
    if mime.startswith("image/"):
        return _inspect_image(path, mime, ext)
    return _inspect_video(path, mime, ext)


def _tail(path: Path, n: int) -> bytes:
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - n))
        return f.read()


def _inspect_image(path: Path, mime: str, ext: str) -> Inspection:
    from PIL import Image  # imported here: only ingest needs Pillow (genhub-media[ingest])

    size = path.stat().st_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # lazy: reads the header only
                width, height = img.size
                if mime == "image/png":
                    img.verify()  # walks every chunk, checking CRCs, up to IEND
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise errors.PermanentMediaError(str(exc), code=errors.TOO_LARGE) from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, struct.error, ...
        raise _invalid(f"damaged or truncated {mime}: {exc}") from exc
    # Pillow's lazy open does not read to the end; check the end marker of each format.
    if mime == "image/png" and not _tail(path, 12).startswith(b"\x00\x00\x00\x00IEND"):
        raise _invalid("truncated image/png: no IEND chunk at the end")
    if mime == "image/jpeg" and b"\xff\xd9" not in _tail(path, 32):
        raise _invalid("truncated image/jpeg: no end-of-image marker")
    if mime == "image/gif" and not _tail(path, 1) == b"\x3b":
        raise _invalid("truncated image/gif: no trailer")
    if mime == "image/webp":
        with path.open("rb") as f:
            f.seek(4)
            riff_size = struct.unpack("<I", f.read(4))[0]
        if riff_size + 8 != size:
            raise _invalid(f"truncated image/webp: RIFF says {riff_size + 8} bytes, got {size}")
    if width <= 0 or height <= 0:
        raise _invalid(f"{mime} with no pixels")
    return Inspection(mime, ext, width, height)


def _boxes(path: Path) -> list[bytes]:
    """The top-level ISO BMFF box types; raises INVALID unless the boxes tile the file."""
    size = path.stat().st_size
    types: list[bytes] = []
    offset = 0
    with path.open("rb") as f:
        while offset < size:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                raise _invalid("truncated video: a box header is cut off")
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1:
                if len(header) < 16:
                    raise _invalid("truncated video: a box header is cut off")
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - offset  # "to the end of the file"
            if box_size < 8 or offset + box_size > size:
                raise _invalid(
                    f"truncated video: box {box_type!r} at {offset} needs {box_size} bytes, "
                    f"the file has {size - offset} left"
                )
            types.append(box_type)
            offset += box_size
    return types


def _inspect_video(path: Path, mime: str, ext: str) -> Inspection:
    boxes = _boxes(path)
    if b"moov" not in boxes:
        raise _invalid(f"{mime} without a moov box (no index; unplayable)")
    import av  # imported here: only ingest needs PyAV (genhub-media[ingest])

    try:
        with av.open(str(path)) as container:  # reads the moov index, not the frames
            streams = container.streams.video
            if not streams:
                raise _invalid(f"{mime} without a video stream")
            stream = streams[0]
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            duration = 0.0
            if container.duration is not None:
                duration = float(container.duration) / float(av.time_base)
    except errors.MediaError:
        raise
    except Exception as exc:  # av.FFmpegError and friends
        raise _invalid(f"unreadable {mime}: {exc}") from exc
    return Inspection(mime, ext, width, height, round(duration, 3))
