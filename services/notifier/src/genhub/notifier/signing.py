"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec "Signature scheme"):
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one signature per
secret, space-separated, which the spec allows exactly for zero-downtime secret rotation."""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook


class Signer:
    """Signs payloads with every configured secret (``whsec_``-prefixed base64)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required (GENHUB_WEBHOOK_SECRETS)")
        self._hooks: list[Webhook] = []
        for index, secret in enumerate(secrets):
            try:
                self._hooks.append(Webhook(secret))
            except (binascii.Error, ValueError, Exception) as exc:
                # The message names the position, never the secret.
                raise ValueError(
                    f"webhook secret #{index + 1} is not whsec_<base64>: {type(exc).__name__}"
                ) from None

    @classmethod
    def from_setting(cls, value: str) -> Signer:
        """From the comma-separated ``GENHUB_WEBHOOK_SECRETS``."""
        return cls([s.strip() for s in value.split(",") if s.strip()])

    def headers(self, msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
        """The three Standard Webhooks headers for one delivery attempt; ``timestamp`` (UTC)
        is the attempt's time, since receivers refuse timestamps older than five minutes."""
        signatures = " ".join(hook.sign(msg_id, timestamp, body) for hook in self._hooks)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signatures,
        }
