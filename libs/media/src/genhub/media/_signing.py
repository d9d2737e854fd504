"""HMAC-signed, expiring URLs for media the gateway serves itself (the local-folder backend).

``GET /api/v1/media/{media_id}?expires=<unix seconds>&signature=<base64url>`` where the
signature is HMAC-SHA256 over ``"<media_id>\\n<expires>"`` with the deployment's URL key. The
first key signs and every key verifies, so a key is rotated without breaking URLs already
handed out: put the new key first, keep the old one for at least the URL lifetime, then drop it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from urllib.parse import urlencode

MEDIA_PATH = "/api/v1/media/"


class SignatureInvalid(Exception):
    """The URL's signature does not match or it has expired; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UrlSigner:
    """Signs and verifies media URLs. ``keys``: at least one secret, each at least 32 bytes
    of text (ValueError otherwise); ``base_url``: the public REST origin the URLs start with
    (e.g. ``https://genhub.example.com``), empty for a path-only URL."""

    def __init__(self, keys: Sequence[str], base_url: str = "") -> None:
        if not keys:
            raise ValueError("at least one media URL key is required")
        if any(len(k) < 32 for k in keys):
            raise ValueError("media URL keys must be at least 32 characters")
        self._keys = [k.encode() for k in keys]
        self._base = base_url.rstrip("/")

    @classmethod
    def from_setting(cls, value: str, base_url: str = "") -> UrlSigner:
        """From the comma-separated ``GENHUB_MEDIA_URL_KEYS``."""
        return cls([k.strip() for k in value.split(",") if k.strip()], base_url)

    @staticmethod
    def _mac(key: bytes, media_id: str, expires: int) -> str:
        digest = hmac.new(key, f"{media_id}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, media_id: str, ttl_seconds: float, *, now: float | None = None) -> str:
        """The URL of ``media_id``, valid for ``ttl_seconds`` from ``now`` (Unix seconds)."""
        expires = int((time.time() if now is None else now) + ttl_seconds)
        query = urlencode(
            {"expires": expires, "signature": self._mac(self._keys[0], media_id, expires)}
        )
        return f"{self._base}{MEDIA_PATH}{media_id}?{query}"

    def verify(
        self, media_id: str, expires: str, signature: str, *, now: float | None = None
    ) -> None:
        """Accept a URL's parts or raise SignatureInvalid (missing, malformed, wrong or expired).

        The signature is checked before the expiry, so an expired-URL answer never tells a
        forger anything about a signature it guessed.
        """
        if not expires or not signature:
            raise SignatureInvalid("the URL has no expires/signature; ask the API for a fresh URL")
        try:
            when = int(expires)
        except ValueError:
            raise SignatureInvalid("expires is not a number") from None
        if not any(
            hmac.compare_digest(self._mac(key, media_id, when), signature) for key in self._keys
        ):
            raise SignatureInvalid("the signature does not match")
        if (time.time() if now is None else now) >= when:
            raise SignatureInvalid("the URL has expired; ask the API for a fresh URL")
