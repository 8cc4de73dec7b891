"""PostgreSQL side of ``surveybot db copy`` (see storage.copy): introspect the tables of the
current schema, stream rows out, load rows with ``COPY`` converting values to column types."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from storage.copy import parents_first
from storage.postgres.sql import as_utc, quote_ident

INTERNAL = {"schema_migrations"}


async def copy_tables(pool: asyncpg.Pool) -> list[str]:
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )
    references = await pool.fetch(
        "SELECT child.relname AS child, parent.relname AS parent FROM pg_constraint c"
        " JOIN pg_class child ON child.oid = c.conrelid"
        " JOIN pg_class parent ON parent.oid = c.confrelid"
        " JOIN pg_namespace n ON n.oid = child.relnamespace"
        " WHERE c.contype = 'f' AND n.nspname = current_schema()"
    )
    names = [str(r["table_name"]) for r in tables if r["table_name"] not in INTERNAL]
    return parents_first(names, [(str(r["child"]), str(r["parent"])) for r in references])


async def _known(pool: asyncpg.Pool, table: str) -> str:
    if table not in await copy_tables(pool):
        raise ValueError(f"no table {table!r}")
    return quote_ident(table)


async def dump_rows(pool: asyncpg.Pool, table: str) -> AsyncIterator[dict[str, Any]]:
    name = await _known(pool, table)
    async with pool.acquire() as conn, conn.transaction():
        async for row in conn.cursor(f"SELECT * FROM {name}"):
            yield dict(row)


async def count_rows(pool: asyncpg.Pool, table: str) -> int:
    return int(await pool.fetchval(f"SELECT count(*) FROM {await _known(pool, table)}"))


async def clear_tables(pool: asyncpg.Pool) -> None:
    names = ", ".join(quote_ident(t) for t in await copy_tables(pool))
    if names:
        await pool.execute(f"TRUNCATE {names} RESTART IDENTITY")


def _convert(value: Any, data_type: str) -> Any:
    if value is None:
        return None
    if data_type.startswith("timestamp"):
        return as_utc(value)
    if data_type in ("json", "jsonb"):
        return value if isinstance(value, str) else json.dumps(value)
    if data_type in ("integer", "bigint", "smallint"):
        return int(value)
    if data_type == "boolean":
        return bool(value)
    if data_type == "text" and isinstance(value, datetime):
        return value.isoformat()
    return value


async def load_rows(pool: asyncpg.Pool, table: str, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    await _known(pool, table)
    info = await pool.fetch(
        "SELECT column_name, data_type, is_identity = 'YES'"
        " OR coalesce(column_default, '') LIKE 'nextval(%' AS counter"
        " FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    types = {str(r["column_name"]): str(r["data_type"]) for r in info}
    columns = list(rows[0])
    unknown = [c for c in columns if c not in types]
    if unknown:
        raise ValueError(f"table {table!r} has no column(s) {', '.join(unknown)}")
    records = [tuple(_convert(row[c], types[c]) for c in columns) for row in rows]
    async with pool.acquire() as conn, conn.transaction():
        await conn.copy_records_to_table(table, records=records, columns=columns)
        for r in info:
            if r["counter"] and r["column_name"] in columns:
                col = quote_ident(str(r["column_name"]))
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(MAX({col}), 1),"
                    f" MAX({col}) IS NOT NULL) FROM {quote_ident(table)}",
                    quote_ident(table),
                    str(r["column_name"]),
                )
    return len(records)
