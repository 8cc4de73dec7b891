"""`surveybot report` on SQLite: the report's statements (storage.reporting and
storage.followup_report) on read-only connections of their own, so a report never waits behind
answers being committed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiosqlite

from storage.followup_report import report_statements
from storage.reporting import ReportQuery, ReportRows, Statement
from storage.sqlite.connection import SQLiteConnection


async def report_rows(conn: SQLiteConnection, query: ReportQuery) -> ReportRows:
    """Two read-only connections at once: the answers statement (the heaviest) on one,
    the others one after another on the second. WAL lets them read while answers are
    being committed; aiosqlite gives each connection a thread and SQLite releases the GIL
    while it works, so the two use two cores. An in-memory database has one connection:
    there the statements run one after the other."""
    statements = report_statements(query, "sqlite")
    if conn.path == ":memory:":
        async with conn.lock:
            results = [await _fetch(conn.db, s.sql, s.params) for s in statements]
    else:
        uri = _read_only_uri(conn.path)
        lanes = await asyncio.gather(_read(uri, statements[:1]), _read(uri, statements[1:]))
        results = [result for lane in lanes for result in lane]
    rows: ReportRows = {}
    for result in results:
        for row in result:
            rows.setdefault(row["section"], []).append(row)
    return rows


def _read_only_uri(path: str) -> str:
    return Path(path).resolve().as_uri() + "?mode=ro"


async def _read(uri: str, statements: list[Statement]) -> list[list[dict[str, Any]]]:
    async with aiosqlite.connect(uri, uri=True) as reader:
        await reader.execute("PRAGMA busy_timeout=5000")
        return [await _fetch(reader, s.sql, s.params) for s in statements]


async def _fetch(
    db: aiosqlite.Connection, sql: str, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    async with db.execute(sql, params) as cur:
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
