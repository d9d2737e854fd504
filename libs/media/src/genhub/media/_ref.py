"""Media references: what a task result stores instead of bytes, and the id/key layout."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# File types GenHub stores: extension <-> MIME type. Only what the checks in _inspect verify.
MIME_BY_EXT = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
}
EXT_BY_MIME = {mime: ext for ext, mime in MIME_BY_EXT.items()}
_OWNER = re.compile(r"[0-9A-Za-z-]{1,64}")
MEDIA_ID = re.compile(
    r"(?P<owner>[0-9A-Za-z-]{1,64})_(?P<token>[0-9a-f]{16})(?P<ext>\.[a-z0-9]{2,4})"
)


@dataclass(frozen=True)
class MediaRef:
    """A stored file. ``size`` in bytes; ``sha256`` lowercase hex; ``width``/``height`` in
    pixels (0 when not an image); ``duration`` in seconds (0.0 when not a video or unknown)."""

    media_id: str
    key: str
    size: int
    sha256: str
    mime: str
    width: int = 0
    height: int = 0
    duration: float = 0.0

    @property
    def owner(self) -> str:
        """The task (or other owner) the file belongs to."""
        return owner_of(self.media_id)


def new_media_id(owner: str, ext: str) -> str:
    """A fresh, URL-safe media id ``<owner>_<16 hex>.<ext>``: the owner (a task id) and the file
    type are part of it, so the key, the MIME type and the orphan check follow from the id
    alone. ValueError for an owner outside ``[0-9A-Za-z-]{1,64}`` or an unknown extension."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"owner {owner!r} must be 1-64 letters, digits or '-'")
    if ext not in MIME_BY_EXT:
        raise ValueError(f"unknown media extension {ext!r}")
    return f"{owner}_{secrets.token_hex(8)}{ext}"


def parse_media_id(media_id: str) -> re.Match[str]:
    """The parts of a media id; ValueError when it is not one."""
    match = MEDIA_ID.fullmatch(media_id)
    if match is None or match["ext"] not in MIME_BY_EXT:
        raise ValueError(f"{media_id[:100]!r} is not a media id")
    return match


def owner_of(media_id: str) -> str:
    """The owner part of a media id."""
    return parse_media_id(media_id)["owner"]


def key_for(media_id: str, prefix: str = "") -> str:
    """The object key of a media id: ``<prefix><owner>/<media_id>`` (one folder per task, so a
    task's files list together and an orphan sweep reads the owner from the key)."""
    return f"{prefix}{owner_of(media_id)}/{media_id}"


def mime_of(media_id: str) -> str:
    """The MIME type a media id's extension stands for."""
    return MIME_BY_EXT[parse_media_id(media_id)["ext"]]
