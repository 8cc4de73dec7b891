"""Storage URLs for tests, one factory per backend: each yields the URL of a fresh, empty
store and removes it afterwards. The storage contract suite and the copy tests are
parametrized over :data:`BACKENDS`; a new backend adds one entry here.

PostgreSQL: ``SURVEYBOT_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/
test``); every test gets a schema of its own (``?schema=test_<random>``), dropped afterwards.
If the server is unreachable the test FAILS, so CI never passes by skipping; set
``SURVEYBOT_TEST_POSTGRES=skip`` to skip instead on a machine without PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("SURVEYBOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@asynccontextmanager
async def sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    directory = tmp_path / f"sqlite-{secrets.token_hex(4)}"
    yield f"sqlite:///{directory / 'surveys.db'}"


@asynccontextmanager
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    base = postgres_base_url()
    try:
        admin = await asyncpg.connect(base, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        message = (
            f"PostgreSQL is unreachable at {base} ({exc!r}). Start it (pg_ctlcluster "
            "--skip-systemctl-redirect $(ls /etc/postgresql) main start), point "
            "SURVEYBOT_TEST_POSTGRES_URL at one, or set SURVEYBOT_TEST_POSTGRES=skip."
        )
        if os.environ.get("SURVEYBOT_TEST_POSTGRES") == "skip":
            pytest.skip(message)
        pytest.fail(message)
    schema = f"test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield with_schema(base, schema)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


BACKENDS: dict[str, Callable[[Path], AbstractAsyncContextManager[str]]] = {
    "sqlite": sqlite_url,
    "postgres": postgres_url,
}
# Backends that several worker processes may share (concurrent migrations, two handles).
SHARED = ["postgres"]
