"""SQLite side of ``surveybot db copy`` (see storage.copy): introspect tables, stream rows out,
load rows converting datetimes to the ISO text SQLite keeps and JSON values to text. Works on
the public interface of :class:`~storage.sqlite.connection.SQLiteConnection`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from storage.base import iso
from storage.copy import parents_first
from storage.sqlite.connection import SQLiteConnection


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def schema_version(conn: SQLiteConnection) -> int:
    row = await conn.one("PRAGMA user_version")
    return int(row[0]) if row else 0


async def copy_tables(conn: SQLiteConnection) -> list[str]:
    rows = await conn.all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    names = [str(r[0]) for r in rows]
    references: list[tuple[str, str]] = []
    for name in names:
        for fk in await conn.all(f"PRAGMA foreign_key_list({_quote(name)})"):
            references.append((name, str(fk[2])))
    return parents_first(names, references)


async def _known(conn: SQLiteConnection, table: str) -> str:
    if table not in await copy_tables(conn):
        raise ValueError(f"no table {table!r}")
    return _quote(table)


async def dump_rows(conn: SQLiteConnection, table: str) -> AsyncIterator[dict[str, Any]]:
    name = await _known(conn, table)
    async for row in conn.dicts(f"SELECT * FROM {name}"):
        yield row


async def count_rows(conn: SQLiteConnection, table: str) -> int:
    row = await conn.one(f"SELECT count(*) FROM {await _known(conn, table)}")
    return int(row[0])


async def clear_tables(conn: SQLiteConnection) -> None:
    tables = await copy_tables(conn)
    async with conn.transaction() as db:
        for table in reversed(tables):  # children before the parents they reference
            await db.execute(f"DELETE FROM {_quote(table)}")
        if await conn.one("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"):
            await db.execute("DELETE FROM sqlite_sequence")


def _convert(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


async def load_rows(conn: SQLiteConnection, table: str, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    name = await _known(conn, table)
    columns = list(rows[0])
    sql = (
        f"INSERT INTO {name} ({', '.join(map(_quote, columns))})"
        f" VALUES ({', '.join('?' * len(columns))})"
    )
    async with conn.transaction() as db:
        await db.executemany(sql, [tuple(_convert(row[c]) for c in columns) for row in rows])
    return len(rows)
