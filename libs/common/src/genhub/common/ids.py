"""Identifiers: time-ordered, URL-safe task ids (ULID layout, lowercase Crockford base32)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id() -> str:
    """A 26-character id: 48 bits of milliseconds then 80 random bits.

    Ids sort by creation time, so the task store pages newest-first by id alone, and a page
    boundary never shifts when tasks are inserted concurrently.
    """
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_token() -> str:
    """An unguessable opaque token (run ids, request ids)."""
    return secrets.token_hex(12)
