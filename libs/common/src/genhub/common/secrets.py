"""Provider secrets at rest and in flight: Fernet encryption with key rotation, and masking.

Keys come from ``GENHUB_SECRETS_KEYS`` (a Kubernetes Secret in production): comma-separated
Fernet keys, the first one encrypts, all of them decrypt. To rotate, put a new key first and keep
the old ones; the gateway re-encrypts stored secrets under the new key at start-up, after which
the old key can be dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from genhub.common.errors import FailedPrecondition


class SecretBox:
    """Encrypts and decrypts secrets with the configured keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        fernets = [Fernet(key.strip().encode()) for key in keys]
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, value: str) -> SecretBox | None:
        """A box from the comma-separated setting, or None when no key is configured."""
        keys = [k for k in value.split(",") if k.strip()]
        return cls(keys) if keys else None

    @staticmethod
    def generate_key() -> str:
        """A new random key."""
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        """A token that only holders of the keys can read."""
        return self._primary.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The plaintext of a token made with any configured key."""
        try:
            return self._all.decrypt(token.encode()).decode()
        except InvalidToken:
            raise FailedPrecondition(
                "a stored secret cannot be decrypted with the configured GENHUB_SECRETS_KEYS "
                "(was a key dropped before its secrets were re-encrypted?)",
                reason="SECRET_UNREADABLE",
            ) from None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is already encrypted with the primary key."""
        try:
            self._primary.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same secret, encrypted with the primary key."""
        return self._all.rotate(token.encode()).decode()


def mask(secret: str) -> str:
    """A display form that identifies a secret without revealing it: ``sk-****abcd``."""
    if not secret:
        return ""
    # Keep a short type prefix such as "sk-" (it says what kind of key it is, not which key).
    head = secret.split("-", 1)[0]
    prefix = head + "-" if "-" in secret and len(head) <= 3 else ""
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{prefix}****{tail}"
