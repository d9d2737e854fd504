"""A media store per test on each backend: S3 (a fresh bucket on the loopback versitygw) and a
local folder served by the gateway's media route on a loopback port; and a fake provider CDN."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from obstore.store import LocalStore
from pydantic import SecretStr
from starlette.applications import Starlette

from genhub.egress import EgressPolicy
from genhub.gateway.rest.media_route import media_route
from genhub.media import Downloader, MediaSettings, MediaStore, ObstoreBackend, UrlSigner
from tests.support import buckets, http_server, infra, media_files

URL_KEY = "k" * 40
LOCAL = EgressPolicy.from_setting("127.0.0.0/8")  # the fake CDN is on loopback, like the fakes


@dataclass
class Cdn:
    """The fake provider CDN: its base URL and the files it serves."""

    url: str
    files: dict[str, bytes]


@pytest.fixture
async def cdn() -> AsyncIterator[Cdn]:
    files: dict[str, bytes] = {}
    app = media_files.cdn_app(files, 50 * 1024 * 1024, media_files.mp4_bytes())
    async with http_server.serve(app) as port:
        yield Cdn(f"http://127.0.0.1:{port}", files)


@contextlib.asynccontextmanager
async def _local_store(root: Path) -> AsyncIterator[MediaStore]:
    # The gateway's route must know the signer's base URL, which needs the port: bind first.
    holder: list[MediaStore] = []
    signer_box: list[UrlSigner] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await Starlette(routes=[media_route(holder[0], signer_box[0])])(scope, receive, send)

    async with http_server.serve(app) as port:
        signer = UrlSigner([URL_KEY], f"http://127.0.0.1:{port}")
        signer_box.append(signer)
        store = MediaStore(
            ObstoreBackend(LocalStore(root, mkdir=True), signer), Downloader(LOCAL, timeout=10)
        )
        holder.append(store)
        yield store
        await store.aclose()


@pytest.fixture(params=["s3", "local"])
async def media_store(
    request: pytest.FixtureRequest, tmp_path: Path, object_store: str, unique: str
) -> AsyncIterator[MediaStore]:
    """The same MediaStore interface over each backend."""
    if request.param == "s3":
        async with buckets.bucket(unique) as name:
            store = MediaStore(
                ObstoreBackend(buckets.s3_store(name)), Downloader(LOCAL, timeout=10)
            )
            yield store
            await store.aclose()
    else:
        async with _local_store(tmp_path / "media") as store:
            yield store


def s3_media(bucket: str, endpoint: str = infra.S3_ENDPOINT, **overrides: Any) -> MediaSettings:
    """Media settings for ``bucket`` on the loopback versitygw (or a proxy in front of it)."""
    values: dict[str, Any] = {
        "media_backend": "s3",
        "media_s3_bucket": bucket,
        "media_s3_endpoint": endpoint,
        "media_s3_access_key_id": SecretStr(infra.S3_ACCESS_KEY),
        "media_s3_secret_access_key": SecretStr(infra.S3_SECRET_KEY),
        "media_download_timeout_seconds": 10,
    }
    return MediaSettings(**(values | overrides))
