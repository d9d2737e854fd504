"""Page tokens bound to the request they came from.

The store's own token (a cursor) is wrapped as ``v1.<cursor, base64url>.<mac, base64url>``
where the MAC is HMAC-SHA256 (truncated to 128 bits) over the route (the RPC), the normalised
filters of the request (user, type, status, query, ...; not ``page_size``, which AIP-158 lets a
client change between pages) and the cursor. A token used with other filters or on another
route, or edited, is INVALID_ARGUMENT naming ``page_token``; so is a token from before a
restart when no shared secret is configured.

The MAC key is derived from ``GENHUB_API_KEY_PEPPER`` (so every gateway replica accepts every
replica's tokens); without one, each gateway process makes a random key of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from genhub.common.errors import InvalidArgument

_VERSION = "v1"
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _refuse(description: str) -> InvalidArgument:
    return InvalidArgument.one("page_token", description)


@dataclass(frozen=True)
class BoundPages:
    """The page tokens of one request: ``unwrap`` the client's, ``wrap`` the store's."""

    key: bytes
    context: bytes

    def _mac(self, cursor: str) -> bytes:
        return hmac.new(self.key, self.context + b"\0" + cursor.encode(), hashlib.sha256).digest()[
            :_MAC_BYTES
        ]

    def wrap(self, cursor: str) -> str:
        """The client's token for the store's ``cursor`` (empty stays empty: the last page)."""
        if not cursor:
            return ""
        return f"{_VERSION}.{_b64(cursor.encode())}.{_b64(self._mac(cursor))}"

    def unwrap(self, token: str) -> str:
        """The store's cursor in a client's ``token`` (empty: the first page); InvalidArgument
        naming ``page_token`` when it was not issued for this request."""
        if not token:
            return ""
        version, _, rest = token.partition(".")
        body, _, mac = rest.partition(".")
        try:
            cursor = _unb64(body).decode()
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            raise _refuse("is not a page token this API issued") from None
        if version != _VERSION or not cursor or not hmac.compare_digest(given, self._mac(cursor)):
            raise _refuse(
                "does not belong to this request: a page token works only with the method and "
                "filters (user_id, type, status, query, ...) of the request that returned it; "
                "start again without page_token"
            )
        return cursor


class PageTokens:
    """Issues and checks page tokens under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> PageTokens:
        """Tokens keyed from a shared secret (domain-separated from its other uses); a random
        per-process key when ``secret`` is empty."""
        if not secret:
            return cls(secrets.token_bytes(32))
        return cls(hmac.new(secret.encode(), b"genhub page tokens v1", hashlib.sha256).digest())

    def bind(self, route: str, **filters: object) -> BoundPages:
        """The tokens of a ``route`` request with these filters (values as the request has
        them after normalisation, e.g. the caller's own user id)."""
        context = json.dumps([route, filters], sort_keys=True, separators=(",", ":"), default=str)
        return BoundPages(self._key, context.encode())
