"""Provider documents: the catalogue workers declare, operator model overrides, the enabled flag,
and the provider configuration (secrets already encrypted by the gateway).

One document per provider in the ``providers`` collection::

    {_id: name, declared: Provider, overrides: [Model, ...], enabled: bool,
     config: StoredProviderConfig | absent, updated_at}
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, timestamp_pb2
from pymongo import ASCENDING
from pymongo.errors import PyMongoError

from genhub.common.errors import Aborted, NotFound, StoreError
from genhub.store.v1 import provider_store_pb2
from genhub.taskstore import documents
from genhub.taskstore.mongo import Collection
from genhub.v1 import provider_pb2


def merged_provider(doc: dict[str, Any]) -> provider_pb2.Provider:
    """The provider as clients see it: declared models, with overrides replacing or adding."""
    provider = json_format.ParseDict(
        doc.get("declared") or {"name": doc["_id"]}, provider_pb2.Provider()
    )
    provider.name = doc["_id"]
    provider.enabled = bool(doc.get("enabled", True))
    overrides = {
        model_id: json_format.ParseDict(model, provider_pb2.Model())
        for model_id, model in _overrides(doc).items()
    }
    models = [overrides.pop(m.model, m) for m in provider.models]
    models += [overrides[k] for k in sorted(overrides)]
    del provider.models[:]
    provider.models.extend(models)
    del provider.task_types[:]
    provider.task_types.extend(sorted({m.type for m in models}))
    return provider


def _overrides(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Operator overrides by model id. Stored as a list: model ids contain dots ("gpt-4.1"),
    which FerretDB refuses in a document key (and MongoDB discourages). Documents written as a
    map by earlier versions are read too."""
    stored = doc.get("overrides") or []
    if isinstance(stored, dict):
        return dict(stored)
    return {str(model["model"]): model for model in stored}


def _stored(doc: dict[str, Any]) -> provider_store_pb2.StoredProviderConfig:
    stored = json_format.ParseDict(doc["config"], provider_store_pb2.StoredProviderConfig())
    stored.config.provider = doc["_id"]
    stored.config.enabled = bool(doc.get("enabled", True))
    updated = doc.get("updated_at")
    if updated is not None:
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(updated)
        stored.config.update_time.CopyFrom(ts)
    return stored


def _changed(name: str, expected: int, found: int) -> Aborted:
    return Aborted(
        f"provider {name!r} configuration changed meanwhile (expected version {expected}); "
        "re-read it and retry",
        reason="CONFIG_VERSION_MISMATCH",
        metadata={"provider": name, "expected_version": str(expected), "found": str(found)},
    )


class ProviderRepository:
    """Provider documents (writes by ``_id`` through the database's write gate)."""

    def __init__(self, collection: Collection) -> None:
        self._providers = collection

    async def _update(
        self,
        name: str,
        update: dict[str, Any],
        *,
        upsert: bool = False,
        expect: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        # ``expect`` adds conditions to the filter: a compare-and-set, atomic because every
        # task-store write goes through the write gate (FerretDB's filtered updates are not).
        update.setdefault("$set", {})["updated_at"] = documents.now()
        try:
            return await self._providers.find_one_and_update(
                {"_id": name, **(expect or {})}, update, upsert=upsert
            )
        except PyMongoError as exc:
            raise StoreError(f"provider update failed: {exc}") from exc

    async def _get(self, name: str) -> dict[str, Any] | None:
        return await self._providers.find_one({"_id": name})

    async def put_declared(self, provider: provider_pb2.Provider) -> provider_pb2.Provider:
        """Store the catalogue a provider's workers declare; a new provider starts enabled."""
        declared = documents.as_dict(provider)
        declared.pop("enabled", None)
        doc = await self._update(
            provider.name,
            {"$set": {"declared": declared}, "$setOnInsert": {"enabled": True}},
            upsert=True,
        )
        assert doc is not None
        return merged_provider(doc)

    async def list_providers(self) -> list[provider_pb2.Provider]:
        """Every known provider, by name."""
        try:
            docs = await self._providers.find({}).sort("_id", ASCENDING).to_list()
        except PyMongoError as exc:
            raise StoreError(f"list providers failed: {exc}") from exc
        return [merged_provider(d) for d in docs if d.get("declared")]

    async def _known(self, name: str) -> dict[str, Any]:
        doc = await self._get(name)
        if doc is None or not doc.get("declared"):
            raise NotFound(f"provider {name!r} is not known", metadata={"provider": name})
        return doc

    async def set_enabled(self, name: str, enabled: bool) -> provider_pb2.Provider:
        """Enable or disable a known provider."""
        await self._known(name)
        doc = await self._update(name, {"$set": {"enabled": enabled}})
        assert doc is not None
        return merged_provider(doc)

    async def put_model(self, name: str, model: provider_pb2.Model) -> provider_pb2.Provider:
        """Add or replace a model of a known provider."""
        doc = await self._known(name)
        overrides = _overrides(doc)
        overrides[model.model] = documents.as_dict(model)
        # The whole list is rewritten (one write, and no field path holds a model id).
        updated = await self._update(name, {"$set": {"overrides": list(overrides.values())}})
        assert updated is not None
        return merged_provider(updated)

    async def delete_model(self, name: str, model: str) -> provider_pb2.Provider:
        """Remove an override; NotFound when there is none."""
        doc = await self._known(name)
        overrides = _overrides(doc)
        if overrides.pop(model, None) is None:
            raise NotFound(f"provider {name!r} has no override for model {model!r}")
        updated = await self._update(name, {"$set": {"overrides": list(overrides.values())}})
        assert updated is not None
        return merged_provider(updated)

    async def put_config(
        self, stored: provider_store_pb2.StoredProviderConfig, expected_version: int = 0
    ) -> provider_store_pb2.StoredProviderConfig:
        """Store a provider's configuration; its version becomes the stored one's plus one.

        Every write is conditional on the version it read, so two writers cannot both bump to
        the same version; with ``expected_version`` the caller names the version it based its
        change on (re-encryption after a key rotation), and ``Aborted`` answers when another
        save came first, or the configuration was deleted meanwhile.
        """
        name = stored.config.provider
        doc = await self._known(name)
        current = int((doc.get("config") or {}).get("version", 0))
        if expected_version and expected_version != current:
            raise _changed(name, expected_version, current)
        body = provider_store_pb2.StoredProviderConfig()
        body.CopyFrom(stored)
        body.version = current + 1
        body.config.ClearField("enabled")
        body.config.ClearField("update_time")
        # proto3 JSON stores the int64 version as a string; match either form.
        expect: dict[str, Any] = (
            {"config.version": {"$in": [current, str(current)]}}
            if current
            else {"config": {"$exists": False}}
        )
        updated = await self._update(
            name, {"$set": {"config": documents.as_dict(body)}}, expect=expect
        )
        if updated is None:
            raise _changed(name, expected_version or current, -1)
        return _stored(updated)

    async def get_config(self, name: str) -> provider_store_pb2.StoredProviderConfig:
        """A provider's stored configuration; NotFound when none is stored."""
        doc = await self._get(name)
        if doc is None or not doc.get("config"):
            raise NotFound(
                f"provider {name!r} has no stored configuration", metadata={"provider": name}
            )
        return _stored(doc)

    async def list_configs(self) -> list[provider_store_pb2.StoredProviderConfig]:
        """Every stored configuration, by provider."""
        try:
            docs = await self._providers.find({}).sort("_id", ASCENDING).to_list()
        except PyMongoError as exc:
            raise StoreError(f"list provider configs failed: {exc}") from exc
        return [_stored(d) for d in docs if d.get("config")]

    async def delete_config(self, name: str) -> None:
        """Remove a stored configuration; NotFound when none is stored."""
        await self.get_config(name)
        await self._update(name, {"$unset": {"config": ""}})
