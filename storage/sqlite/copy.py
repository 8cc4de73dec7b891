"""SQLite side of ``surveybot db copy`` (see storage.copy): introspect tables, stream rows out,
load rows converting datetimes to the ISO text SQLite keeps and JSON values to text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.base import iso
from storage.copy import parents_first

if TYPE_CHECKING:
    from storage.sqlite.backend import SQLiteStorage


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def schema_version(storage: SQLiteStorage) -> int:
    row = await storage._one("PRAGMA user_version")
    return int(row[0]) if row else 0


async def copy_tables(storage: SQLiteStorage) -> list[str]:
    rows = await storage._all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    names = [str(r[0]) for r in rows]
    references: list[tuple[str, str]] = []
    for name in names:
        for fk in await storage._all(f"PRAGMA foreign_key_list({_quote(name)})"):
            references.append((name, str(fk[2])))
    return parents_first(names, references)


async def _known(storage: SQLiteStorage, table: str) -> str:
    if table not in await copy_tables(storage):
        raise ValueError(f"no table {table!r}")
    return _quote(table)


async def dump_rows(storage: SQLiteStorage, table: str) -> AsyncIterator[dict[str, Any]]:
    name = await _known(storage, table)
    async with storage.db.execute(f"SELECT * FROM {name}") as cur:
        columns = [d[0] for d in cur.description]
        async for row in cur:
            yield dict(zip(columns, row, strict=True))


async def count_rows(storage: SQLiteStorage, table: str) -> int:
    row = await storage._one(f"SELECT count(*) FROM {await _known(storage, table)}")
    return int(row[0])


async def clear_tables(storage: SQLiteStorage) -> None:
    tables = await copy_tables(storage)
    async with storage._tx() as db:
        for table in reversed(tables):  # children before the parents they reference
            await db.execute(f"DELETE FROM {_quote(table)}")
        if await storage._one("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"):
            await db.execute("DELETE FROM sqlite_sequence")


def _convert(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


async def load_rows(storage: SQLiteStorage, table: str, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    name = await _known(storage, table)
    columns = list(rows[0])
    sql = (
        f"INSERT INTO {name} ({', '.join(map(_quote, columns))})"
        f" VALUES ({', '.join('?' * len(columns))})"
    )
    async with storage._tx() as db:
        await db.executemany(sql, [tuple(_convert(row[c]) for c in columns) for row in rows])
    return len(rows)
