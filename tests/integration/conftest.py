"""The in-process stack, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.stack import Stack, start_stack


@pytest.fixture
async def stack(vhost: str, database: str) -> AsyncIterator[Stack]:
    """Task-store, a demo worker (concurrency 4) and the gateway."""
    async with start_stack(vhost, database) as running:
        yield running
