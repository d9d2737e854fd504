"""API keys: their format, their keyed hash, and who the caller of the current RPC is.

A key looks like ``gh_live_ab12cd34_<43 url-safe characters>``: ``gh_live_`` says what it is
(secret scanners match it), ``ab12cd34`` is its key id (visible, to recognise a key in a config
file and in ``ListApiKeys``), and the rest is 256 random bits. The store keeps only
``HMAC-SHA256(pepper, key)`` (hex): keys are high-entropy, so a slow KDF would add latency to
every request and no protection; the pepper, a gateway-only secret (``GENHUB_API_KEY_PEPPER``,
a Kubernetes Secret), means a stolen database alone cannot even confirm a guessed key.

:func:`current` is the principal of the RPC being served (a ``ContextVar`` set by the auth
interceptor); it is None when authentication is off, and every policy then allows.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from genhub.common.api_key_store_client import ApiKeyStoreClient
from genhub.common.errors import NotFound, Unauthenticated
from genhub.v1 import api_key_service_pb2

KEY_PREFIX = "gh_live_"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_KEY = re.compile(r"gh_live_([a-z0-9]{8})_[A-Za-z0-9_-]{43}")
BOOTSTRAP_KEY_ID = "bootstrap"
BOOTSTRAP_USER_ID = "bootstrap-admin"
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user a key acts as, whether it is an admin, and the key's id."""

    user_id: str
    admin: bool
    key_id: str


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "principal", default=None
)


def current() -> Principal | None:
    """The caller of the RPC being served; None when authentication is off."""
    return _principal.get()


def bind(principal: Principal | None) -> contextvars.Token[Principal | None]:
    """Make ``principal`` the current caller (the auth interceptor does this per RPC)."""
    return _principal.set(principal)


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, key)``."""
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The key id inside a well-formed key, or None."""
    found = _KEY.fullmatch(key)
    return found.group(1) if found else None


def hash_key(pepper: bytes, key: str) -> str:
    """The stored form of a key: hex HMAC-SHA256 under the pepper."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def bearer(metadata: dict[str, str]) -> str:
    """The key of an ``authorization: Bearer <key>`` entry; Unauthenticated when missing."""
    value = metadata.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "missing API key: send 'authorization: Bearer <key>'", reason="API_KEY_MISSING"
        )
    return token.strip()


class KeyResolver:
    """Turns a presented key into a principal: the bootstrap admin key, or a live stored key.

    Lookups are cached for ``ttl`` seconds (misses too, so a flood of bad keys does not reach
    the store): a key revoked through another gateway replica stops working within ``ttl``
    seconds; one revoked through this replica stops at once (:meth:`forget`).
    """

    def __init__(
        self,
        store: ApiKeyStoreClient,
        pepper: bytes,
        *,
        bootstrap_key: str = "",
        ttl: float = 5.0,
    ) -> None:
        self._store = store
        self._pepper = pepper
        self._bootstrap = bootstrap_key
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def hash(self, key: str) -> str:
        """The stored form of ``key``."""
        return hash_key(self._pepper, key)

    async def resolve(self, key: str) -> Principal:
        """The principal of ``key``; Unauthenticated when it names no live key."""
        if self._bootstrap and hmac.compare_digest(key.encode(), self._bootstrap.encode()):
            return Principal(BOOTSTRAP_USER_ID, True, BOOTSTRAP_KEY_ID)
        if key_id_of(key) is None:
            raise _invalid()
        digest = self.hash(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            try:
                found = await self._store.lookup(digest)
            except NotFound:
                principal = None
            else:
                principal = Principal(
                    found.user_id, found.role == api_key_service_pb2.ROLE_ADMIN, found.key_id
                )
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, principal)
        if principal is None:
            raise _invalid()
        return principal

    def forget(self, key_id: str) -> None:
        """Drop cached lookups of ``key_id`` (after revoking it here)."""
        for digest, (_, principal) in list(self._cache.items()):
            if principal is not None and principal.key_id == key_id:
                del self._cache[digest]


def _invalid() -> Unauthenticated:
    return Unauthenticated("invalid or revoked API key", reason="API_KEY_INVALID")
