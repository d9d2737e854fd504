"""Per-test S3 buckets on the loopback versitygw: created and removed through presigned
requests that obstore signs (a presigned PUT on a bucket is S3's CreateBucket), so no S3 client
library and no hand-written signing is needed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import obstore
from obstore.store import S3Store

from tests.support import infra


def s3_store(bucket: str) -> S3Store:
    """An obstore client for ``bucket`` on the test server."""
    return S3Store(
        bucket,
        config={
            "endpoint": infra.S3_ENDPOINT,
            "access_key_id": infra.S3_ACCESS_KEY,
            "secret_access_key": infra.S3_SECRET_KEY,
            "region": "us-east-1",
            "virtual_hosted_style_request": False,
        },
        client_options={"allow_http": True},
    )


@contextlib.asynccontextmanager
async def bucket(name: str) -> AsyncIterator[str]:
    """Create bucket ``name``; on exit delete its objects and the bucket."""
    store = s3_store(name)
    async with httpx.AsyncClient(timeout=10) as http:
        url = await obstore.sign_async(store, "PUT", "", timedelta(minutes=1))
        (await http.put(url)).raise_for_status()
        try:
            yield name
        finally:
            async for batch in obstore.list(store, None, chunk_size=500):
                await obstore.delete_async(store, [meta["path"] for meta in batch])
            url = await obstore.sign_async(store, "DELETE", "", timedelta(minutes=1))
            (await http.delete(url)).raise_for_status()
