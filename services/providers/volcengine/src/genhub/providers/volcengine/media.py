"""What a returned image is: its MIME type and pixel size, read from its first bytes or its URL.

Providers rarely say: Ark returns ``size`` but no type (its docs say JPEG), Jimeng returns bare
base64. Reading the PNG/JPEG header is a few lines, so no imaging library is needed here.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

_PNG = b"\x89PNG\r\n\x1a\n"
_EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
}
# JPEG start-of-frame markers (baseline, progressive, ...) carry the height and width.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class ImageInfo:
    """MIME type ("" when unknown) and size in pixels (0 when unknown)."""

    mime_type: str = ""
    width: int = 0
    height: int = 0


def sniff(data: bytes) -> ImageInfo:
    """Type and size of PNG or JPEG bytes; ``ImageInfo()`` for anything else."""
    if data.startswith(_PNG) and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return ImageInfo("image/png", width, height)
    if data.startswith(b"\xff\xd8"):
        return ImageInfo("image/jpeg", *_jpeg_size(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageInfo("image/webp")
    return ImageInfo()


def sniff_b64(encoded: str) -> ImageInfo:
    """:func:`sniff` on the first bytes of base64 data (only a prefix is decoded)."""
    head = encoded[:65536]
    head = head[: len(head) - len(head) % 4]
    try:
        return sniff(base64.b64decode(head, validate=False))
    except (binascii.Error, ValueError):
        return ImageInfo()


def mime_from_url(url: str) -> str:
    """The MIME type a URL's file extension names ("" when it names none we know)."""
    path = urlsplit(url).path.lower()
    for extension, mime in _EXTENSIONS.items():
        if path.endswith(extension):
            return mime
    return ""


def parse_size(size: str | None) -> tuple[int, int]:
    """``"1024x768"`` -> (1024, 768); (0, 0) for keywords such as "2K" or nothing."""
    if not size or "x" not in size:
        return 0, 0
    width, _, height = size.lower().partition("x")
    if width.isdigit() and height.isdigit():
        return int(width), int(height)
    return 0, 0


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return 0, 0
