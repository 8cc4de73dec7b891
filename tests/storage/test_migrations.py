"""Existing installations keep migrating now that the schema is written once as data.

``golden/schema-v1.*.sql`` is the DDL the first release wrote by hand. A database created from
it, with a customer's session in it, is opened by the current code: it is brought to the latest
version, keeps the session, and ends with exactly the tables, columns, defaults and indexes of a
database created new.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage import open_storage
from storage.postgres.sql import quote_ident, split_url
from storage.schema import LATEST, TABLES
from storage.sqlite.connection import sqlite_path
from tests.support.storage_backends import BACKENDS

GOLDEN = Path(__file__).resolve().parent / "golden"
OLD_SESSION = (
    "INSERT INTO sessions (id, flow_id, flow_version, platform, user_id, locale, context,"
    " triggered_by, status, state, version, created_at, updated_at) VALUES ('old-1', 'nps',"
    " 'v1', 'telegram', '42', 'en', '{}', 'staff', 'active',"
    ' \'{"locale": "en", "current": 0, "asked": 1}\', 3, '
)


@pytest.fixture(params=list(BACKENDS))
async def urls(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(a store created by release 1, an empty one), on the same backend."""
    async with BACKENDS[request.param](tmp_path) as old, BACKENDS[request.param](tmp_path) as new:
        yield old, new


async def create_release_1(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(sqlite_path(url))
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as db:
            db.executescript((GOLDEN / "schema-v1.sqlite.sql").read_text())
            db.execute(
                OLD_SESSION + "'2024-01-02T03:04:05.000000Z', '2024-01-02T03:04:05.000000Z')"
            )
            db.execute("PRAGMA user_version = 1")
        return
    dsn, schema = split_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SET search_path TO {quote_ident(schema or 'public')}")
        await conn.execute((GOLDEN / "schema-v1.postgres.sql").read_text())
        await conn.execute(OLD_SESSION + "'2024-01-02T03:04:05Z', '2024-01-02T03:04:05Z')")
        await conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); INSERT INTO schema_migrations"
            " (version) VALUES (1)"
        )
    finally:
        await conn.close()


async def describe(url: str) -> dict[str, Any]:
    """Every table's columns (name, type, not null, default, key) and indexes."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            return {
                t.name: (
                    db.execute(f"PRAGMA table_info({t.name})").fetchall(),
                    sorted((name, " ".join((sql or "").split())) for name, sql in db.execute(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                        " AND tbl_name = ?", (t.name,),
                    )),
                )
                for t in TABLES
            }  # fmt: skip
    dsn, schema = split_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default,"
            " is_identity, ordinal_position FROM information_schema.columns"
            " WHERE table_schema = $1 ORDER BY table_name, ordinal_position",
            schema,
        )
        indexes = await conn.fetch(
            "SELECT tablename, indexname, replace(indexdef, $1, '') AS definition"
            " FROM pg_indexes WHERE schemaname = $2 ORDER BY indexname",
            f"{schema}.",
            schema,
        )
        return {
            "columns": [tuple(r) for r in columns if r["table_name"] != "schema_migrations"],
            "indexes": [tuple(r) for r in indexes if r["tablename"] != "schema_migrations"],
        }
    finally:
        await conn.close()


async def test_a_release_1_database_migrates_to_the_schema_of_a_new_one(
    urls: tuple[str, str],
) -> None:
    old_url, new_url = urls
    await create_release_1(old_url)
    for url in urls:
        store = open_storage(url)
        await store.open()
        try:
            assert await store.schema_version() == LATEST
            if url == old_url:
                kept = await store.get_session("old-1")
                assert kept is not None and kept.version == 3
                assert kept.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        finally:
            await store.close()
    old, new = await describe(old_url), await describe(new_url)
    assert old == new
    assert old  # something was compared
