"""The public ProviderService: the catalogue, model overrides, and provider configuration with
secrets encrypted at rest and masked in every answer."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlparse

import grpc
from cryptography.fernet import InvalidToken

from genhub.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from genhub.common.provider_client import ProviderStoreClient
from genhub.common.secrets import SecretBox, mask
from genhub.common.store_client import TaskStoreClient
from genhub.gateway.catalogue import Catalogue
from genhub.gateway.validation import Violations, require_id
from genhub.store.v1 import provider_store_pb2
from genhub.v1 import provider_pb2, provider_service_pb2, provider_service_pb2_grpc, task_pb2

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_RESERVED_HEADERS = frozenset({"authorization", "host", "content-length", "content-type"})
_SECRET_HEADER = re.compile(r"auth|key|token|secret|password|cookie|signature", re.IGNORECASE)
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Providers added by configuration alone are named like packages (also queue names).
_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# Wire APIs a provider can be added with by configuration alone (ProviderConfig.compatible_api);
# the worker serves them with the generic adapter registered for that API.
COMPATIBLE_APIS = ("openai",)
MAX_TIMEOUT_SECONDS = 3600
MAX_RETRIES = 10
REENCRYPT_ATTEMPTS = 5


def masked(stored: provider_store_pb2.StoredProviderConfig) -> provider_pb2.ProviderConfig:
    """The configuration as clients may see it: secrets replaced by their hints."""
    config = provider_pb2.ProviderConfig()
    config.CopyFrom(stored.config)
    config.api_key = stored.api_key_hint
    config.secret_access_key = stored.secret_access_key_hint
    return config


def compatible_provider(name: str) -> provider_pb2.Provider:
    """The declaration of a provider added by configuration alone: no models yet (operators add
    them with UpsertModel); its worker declares the same when it starts."""
    return provider_pb2.Provider(name=name, display_name=f"{name} (OpenAI-compatible)")


class ProviderServicer(provider_service_pb2_grpc.ProviderServiceServicer):
    """Implements genhub.v1.ProviderService over task-store."""

    def __init__(
        self,
        store: TaskStoreClient,
        providers: ProviderStoreClient,
        catalogue: Catalogue,
        box: SecretBox | None,
    ) -> None:
        self._store = store
        self._providers = providers
        self._catalogue = catalogue
        self._box = box

    async def _known(self, name: str, field: str) -> provider_pb2.Provider:
        require_id(field, name)
        for provider in await self._store.list_providers():
            if provider.name == name:
                return provider
        raise NotFound(
            f"provider {name!r} is not known (no worker has declared it)",
            metadata={"provider": name},
        )

    async def ListProviders(
        self, request: provider_service_pb2.ListProvidersRequest, context: Context
    ) -> provider_service_pb2.ListProvidersResponse:
        """Every provider with its merged catalogue."""
        return provider_service_pb2.ListProvidersResponse(
            providers=await self._store.list_providers()
        )

    async def GetProvider(
        self, request: provider_service_pb2.GetProviderRequest, context: Context
    ) -> provider_service_pb2.GetProviderResponse:
        """One provider with its merged catalogue."""
        return provider_service_pb2.GetProviderResponse(
            provider=await self._known(request.name, "name")
        )

    async def UpsertModel(
        self, request: provider_service_pb2.UpsertModelRequest, context: Context
    ) -> provider_service_pb2.UpsertModelResponse:
        """Add or replace a model: no release needed when a provider ships a new model."""
        v = Violations()
        model = request.model
        if not _MODEL_ID.match(model.model):
            v.add("model.model", "must be 1-128 letters, digits, '.', '_', ':' or '-'")
        if model.type not in (
            task_pb2.TASK_TYPE_IMAGE,
            task_pb2.TASK_TYPE_VIDEO,
            task_pb2.TASK_TYPE_TEXT,
        ):
            v.add("model.type", "must be TASK_TYPE_IMAGE, TASK_TYPE_VIDEO or TASK_TYPE_TEXT")
        for i, size in enumerate(model.sizes):
            # "auto": the provider picks (gpt-image-1 and its successors).
            if not re.fullmatch(r"\d{2,5}x\d{2,5}|[1-9]K|auto", size):
                v.add(f"model.sizes[{i}]", "must look like 1024x1024, 2K or auto")
        if any(d <= 0 for d in model.durations_seconds):
            v.add("model.durations_seconds", "must be positive")
        for name in ("max_images", "max_tokens", "max_prompt_chars"):
            if getattr(model, name) < 0:
                v.add(f"model.{name}", "must not be negative")
        v.raise_if_any()
        await self._known(request.provider, "provider")
        await self._providers.put_model(request.provider, model)
        self._catalogue.invalidate()
        log.info(
            "model override stored", extra={"provider": request.provider, "model": model.model}
        )
        return provider_service_pb2.UpsertModelResponse(model=model)

    async def DeleteModel(
        self, request: provider_service_pb2.DeleteModelRequest, context: Context
    ) -> provider_service_pb2.DeleteModelResponse:
        """Remove a model override (a declared model comes back as the worker declared it)."""
        await self._known(request.provider, "provider")
        if not request.model:
            raise InvalidArgument.one("model", "is required")
        await self._providers.delete_model(request.provider, request.model)
        self._catalogue.invalidate()
        return provider_service_pb2.DeleteModelResponse()

    async def UpsertProviderConfig(
        self, request: provider_service_pb2.UpsertProviderConfigRequest, context: Context
    ) -> provider_service_pb2.UpsertProviderConfigResponse:
        """Validate, encrypt the secrets, store; answer masked."""
        config = request.config
        declare = False
        try:
            provider = await self._known(config.provider, "config.provider")
        except NotFound:
            if not config.compatible_api:
                # The provider is a field of the request, so this is bad input, not a missing
                # resource.
                raise InvalidArgument.one(
                    "config.provider",
                    f"unknown provider {config.provider!r} (no worker has declared it; set "
                    "compatible_api to add an OpenAI-compatible provider by configuration)",
                ) from None
            # A provider added by configuration alone: it has no package to declare it.
            provider, declare = compatible_provider(config.provider), True
        self._validate(config, provider)
        if declare:
            await self._store.put_provider(provider)
            self._catalogue.invalidate()
            log.info("compatible provider declared", extra={"provider": config.provider})
        previous: provider_store_pb2.StoredProviderConfig | None
        try:
            previous = await self._providers.get_config(config.provider)
        except NotFound:
            previous = None
        stored = provider_store_pb2.StoredProviderConfig()
        stored.config.CopyFrom(config)
        stored.config.api_key = ""
        stored.config.secret_access_key = ""
        self._seal(stored, "api_key", config.api_key, previous)
        self._seal(stored, "secret_access_key", config.secret_access_key, previous)
        saved = await self._providers.put_config(stored)
        log.info("provider config stored", extra={"provider": config.provider})
        return provider_service_pb2.UpsertProviderConfigResponse(config=masked(saved))

    def _seal(
        self,
        stored: provider_store_pb2.StoredProviderConfig,
        name: str,
        secret: str,
        previous: provider_store_pb2.StoredProviderConfig | None,
    ) -> None:
        if not secret:
            # An empty secret keeps the stored one, so a config can be edited without the key.
            if previous is not None:
                setattr(stored, f"{name}_ciphertext", getattr(previous, f"{name}_ciphertext"))
                setattr(stored, f"{name}_hint", getattr(previous, f"{name}_hint"))
            return
        if self._box is None:
            raise FailedPrecondition(
                "secrets cannot be stored: set GENHUB_SECRETS_KEYS on the gateway and workers",
                reason="SECRETS_KEY_MISSING",
            )
        setattr(stored, f"{name}_ciphertext", self._box.encrypt(secret))
        setattr(stored, f"{name}_hint", mask(secret))

    @staticmethod
    def _validate(config: provider_pb2.ProviderConfig, provider: provider_pb2.Provider) -> None:
        v = Violations()
        if config.api_base:
            try:
                parsed = urlparse(config.api_base)
                host = parsed.hostname
            except ValueError:
                parsed, host = None, None
            if parsed is None or parsed.scheme not in ("http", "https") or not host:
                v.add("config.api_base", "must be an http:// or https:// URL with a host")
            elif parsed.username or parsed.password:
                v.add("config.api_base", "must not carry credentials (use api_key)")
        known = {m.model for m in provider.models}
        for i, model in enumerate(config.models):
            if model not in known:
                v.add(f"config.models[{i}]", f"{model!r} is not in {provider.name}'s catalogue")
        if config.default_model:
            allowed = set(config.models) or known
            if config.default_model not in allowed:
                v.add("config.default_model", f"{config.default_model!r} is not in the model list")
        seconds = config.timeout.seconds + config.timeout.nanos / 1e9
        if not 0 <= seconds <= MAX_TIMEOUT_SECONDS:
            v.add("config.timeout", f"must be between 0 and {MAX_TIMEOUT_SECONDS}s")
        if not 0 <= config.max_retries <= MAX_RETRIES:
            v.add("config.max_retries", f"must be between 0 and {MAX_RETRIES}")
        for name, value in config.extra_headers.items():
            if not _HEADER_NAME.fullmatch(name):
                v.add("config.extra_headers", f"{name!r} is not a valid header name")
            elif name.lower() in _RESERVED_HEADERS or _SECRET_HEADER.search(name):
                # Header values are stored and shown in clear; secrets belong in api_key.
                v.add("config.extra_headers", f"{name!r} looks like a credential: use api_key")
            if "\n" in value or "\r" in value:
                v.add(f"config.extra_headers[{name}]", "must be a single line")
        if config.secret_access_key and not config.access_key_id:
            v.add("config.access_key_id", "is required with secret_access_key")
        if config.compatible_api:
            if config.compatible_api not in COMPATIBLE_APIS:
                v.add("config.compatible_api", f"must be one of: {', '.join(COMPATIBLE_APIS)}")
            if not _PROVIDER_NAME.fullmatch(config.provider):
                v.add("config.provider", "must be 1-40 lowercase letters, digits or '-'")
            if not config.api_base:
                v.add("config.api_base", "is required for a compatible provider")
        v.raise_if_any()

    async def GetProviderConfig(
        self, request: provider_service_pb2.GetProviderConfigRequest, context: Context
    ) -> provider_service_pb2.GetProviderConfigResponse:
        """A stored configuration, masked."""
        require_id("provider", request.provider)
        stored = await self._providers.get_config(request.provider)
        return provider_service_pb2.GetProviderConfigResponse(config=masked(stored))

    async def ListProviderConfigs(
        self, request: provider_service_pb2.ListProviderConfigsRequest, context: Context
    ) -> provider_service_pb2.ListProviderConfigsResponse:
        """Every stored configuration, masked."""
        return provider_service_pb2.ListProviderConfigsResponse(
            configs=[masked(s) for s in await self._providers.list_configs()]
        )

    async def DeleteProviderConfig(
        self, request: provider_service_pb2.DeleteProviderConfigRequest, context: Context
    ) -> provider_service_pb2.DeleteProviderConfigResponse:
        """Remove a stored configuration; deployment defaults apply again."""
        require_id("provider", request.provider)
        await self._providers.delete_config(request.provider)
        return provider_service_pb2.DeleteProviderConfigResponse()

    async def EnableProvider(
        self, request: provider_service_pb2.EnableProviderRequest, context: Context
    ) -> provider_service_pb2.EnableProviderResponse:
        """Allow new tasks for a provider."""
        return provider_service_pb2.EnableProviderResponse(
            config=await self._set_enabled(request.provider, True)
        )

    async def DisableProvider(
        self, request: provider_service_pb2.DisableProviderRequest, context: Context
    ) -> provider_service_pb2.DisableProviderResponse:
        """Refuse new tasks for a provider; queued ones still run."""
        return provider_service_pb2.DisableProviderResponse(
            config=await self._set_enabled(request.provider, False)
        )

    async def _set_enabled(self, name: str, enabled: bool) -> provider_pb2.ProviderConfig:
        await self._known(name, "provider")
        await self._providers.set_enabled(name, enabled)
        self._catalogue.invalidate()
        try:
            return masked(await self._providers.get_config(name))
        except NotFound:
            return provider_pb2.ProviderConfig(provider=name, enabled=enabled)

    async def reencrypt_stored_secrets(self) -> int:
        """Re-encrypt stored secrets under the primary key (after a key rotation); returns how
        many configurations were rewritten.

        Each rewrite is a compare-and-set on the version it read: a configuration saved
        meanwhile (by an operator, or another gateway replica) is never overwritten with the
        older one; it is read again and re-encrypted only if it still needs it.
        """
        if self._box is None:
            return 0
        changed = 0
        for stored in await self._providers.list_configs():
            for _ in range(REENCRYPT_ATTEMPTS):
                fresh = self._rotated(stored)
                if fresh is None:
                    break
                try:
                    await self._providers.put_config(fresh, expected_version=stored.version)
                except Aborted:
                    try:
                        stored = await self._providers.get_config(stored.config.provider)
                    except NotFound:
                        break  # deleted meanwhile: nothing left to re-encrypt
                    continue
                changed += 1
                break
            else:
                log.warning(
                    "provider config kept changing during re-encryption; left for the next start",
                    extra={"provider": stored.config.provider},
                )
        if changed:
            log.info(
                "re-encrypted provider secrets under the primary key", extra={"configs": changed}
            )
        return changed

    def _rotated(
        self, stored: provider_store_pb2.StoredProviderConfig
    ) -> provider_store_pb2.StoredProviderConfig | None:
        """``stored`` with every secret under the primary key, or None if none needed it."""
        assert self._box is not None
        fresh = provider_store_pb2.StoredProviderConfig()
        fresh.CopyFrom(stored)
        dirty = False
        for name in ("api_key_ciphertext", "secret_access_key_ciphertext"):
            token = getattr(stored, name)
            if token and not self._box.is_current(token):
                try:
                    setattr(fresh, name, self._box.rotate(token))
                except InvalidToken:
                    # Not fatal: the gateway must start; workers fail tasks that need it.
                    log.error(
                        "SECRET_UNREADABLE: a stored %s of %s matches no configured key",
                        name.removesuffix("_ciphertext"),
                        stored.config.provider,
                    )
                    continue
                dirty = True
        return fresh if dirty else None
