"""The provider configuration a worker uses: per-request credentials > stored configuration >
deployment defaults, refreshed from task-store every few seconds so a changed key is used on the
next task without a restart."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Protocol

from genhub.common.errors import GenHubError, NotFound
from genhub.common.provider_client import open_credentials
from genhub.common.secrets import SecretBox
from genhub.providers.sdk import CallConfig, PermanentError
from genhub.store.v1 import provider_store_pb2
from genhub.v1 import provider_pb2

log = logging.getLogger(__name__)


class ProviderCatalogues(Protocol):
    """Where the merged catalogues are read (task-store)."""

    async def list_providers(self) -> list[provider_pb2.Provider]:
        """Every stored provider."""
        ...


class ProviderConfigs(Protocol):
    """Where stored provider configurations are read (task-store)."""

    async def get_config(self, name: str) -> provider_store_pb2.StoredProviderConfig:
        """A provider's stored configuration; NotFound when none."""
        ...


class ConfigWatcher:
    """Keeps the provider's stored configuration and merged catalogue fresh."""

    def __init__(
        self,
        provider: str,
        store: ProviderCatalogues,
        configs: ProviderConfigs,
        box: SecretBox | None,
    ) -> None:
        self._provider = provider
        self._store = store
        self._configs = configs
        self._box = box
        self.stored: provider_store_pb2.StoredProviderConfig | None = None
        self.models: list[provider_pb2.Model] | None = None

    async def refresh(self) -> None:
        """Read the configuration and catalogue once."""
        try:
            self.stored = await self._configs.get_config(self._provider)
        except NotFound:
            self.stored = None
        for provider in await self._store.list_providers():
            if provider.name == self._provider:
                self.models = list(provider.models)

    async def run_forever(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except GenHubError as exc:
                log.warning("provider config not refreshed: %s", exc)

    def resolve(self, sealed_request: str) -> CallConfig:
        """The configuration for one call."""
        stored = self.stored
        base = CallConfig(source="deployment")
        if stored is not None:
            config = stored.config
            base = CallConfig(
                source="stored",
                api_base=config.api_base,
                default_model=config.default_model,
                timeout_seconds=config.timeout.ToTimedelta().total_seconds(),
                max_retries=config.max_retries,
                extra_headers=tuple(sorted(config.extra_headers.items())),
            )
        try:
            if sealed_request:
                creds = open_credentials(
                    self._require_box("per-request credentials"), sealed_request
                )
                return replace(
                    base,
                    source="request",
                    api_key=creds["api_key"],
                    access_key_id=creds["access_key_id"],
                    secret_access_key=creds["secret_access_key"],
                )
            if stored is not None and (
                stored.api_key_ciphertext or stored.secret_access_key_ciphertext
            ):
                box = self._require_box("stored provider secrets")
                return replace(
                    base,
                    api_key=box.decrypt(stored.api_key_ciphertext)
                    if stored.api_key_ciphertext
                    else "",
                    access_key_id=stored.config.access_key_id,
                    secret_access_key=box.decrypt(stored.secret_access_key_ciphertext)
                    if stored.secret_access_key_ciphertext
                    else "",
                )
        except GenHubError as exc:
            raise PermanentError(exc.message, code="CREDENTIALS_UNAVAILABLE") from None
        return base

    def _require_box(self, what: str) -> SecretBox:
        if self._box is None:
            raise PermanentError(
                f"{what} need GENHUB_SECRETS_KEYS on the worker", code="CREDENTIALS_UNAVAILABLE"
            )
        return self._box
