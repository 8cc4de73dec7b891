"""Fixtures of the storage contract suites: each test runs once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import open_storage
from storage.base import Storage
from tests.support.storage_backends import BACKENDS


@pytest.fixture(params=list(BACKENDS))
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with BACKENDS[request.param](tmp_path) as fresh:
        yield fresh


@pytest.fixture
async def storage(url: str) -> AsyncIterator[Storage]:
    store = open_storage(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def second(storage: Storage) -> AsyncIterator[Storage]:
    """Another handle on the same store, as a second worker process would have."""
    store = open_storage(storage.url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
