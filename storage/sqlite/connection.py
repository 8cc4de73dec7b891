"""The SQLite connection the backend and ``db copy`` share: opening, migrations, transactions.

One aiosqlite connection in WAL mode with autocommit off by hand: every write runs as ``BEGIN
IMMEDIATE ... COMMIT`` under one asyncio lock, so coroutines sharing the connection never
interleave inside a transaction; hot-path writes go through the group committer
(:mod:`storage.sqlite.batch`). The public methods here are the narrow interface other modules
use (:mod:`storage.sqlite.copy` among them); nothing reaches into the backend's internals.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage.health import HealthTracker
from storage.migrations import SQLITE
from storage.sqlite.batch import GroupCommitter, is_database_failure, rollback

log = logging.getLogger(__name__)
T = TypeVar("T")


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs.db``, ``sqlite:///:memory:`` -> a path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url!r} (expected sqlite:///path/to/file.db)")
    return url[len("sqlite:///") :]


class SQLiteConnection:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self.lock = asyncio.Lock()  # held by every write transaction on this connection
        self._batcher: GroupCommitter | None = None
        self.health = HealthTracker("sqlite")  # every write reports to it

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("storage is not open; call await storage.open() first")
        return self._db

    @property
    def writer(self) -> GroupCommitter:
        """The group committer: single statements and answer commits, batched."""
        if self._batcher is None:
            self._batcher = GroupCommitter(self.run, self.lock, self.health)
        return self._batcher

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the database thread, in one round trip: several statements
        with no hop back to the event loop between them (the group committer's batches).
        aiosqlite has no public call for this; its ``_execute`` and ``_conn`` are what its own
        methods use."""
        db = self.db
        result: T = await db._execute(lambda: fn(db._conn))  # type: ignore[no-untyped-call]
        return result

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            # busy_timeout first: switching a new file to WAL waits for other openers' locks
            await self.db.execute("PRAGMA busy_timeout=5000")
            await self._enable_wal()
            await self.db.execute("PRAGMA synchronous=NORMAL")
            await self.db.execute("PRAGMA foreign_keys=ON")
            await self.migrate()
        except BaseException:
            await self.close()  # no connection thread left behind
            raise

    async def _enable_wal(self) -> None:
        """Switch to WAL. SQLite answers SQLITE_BUSY at once, without its busy handler, when
        several processes switch a new file together; the file is in WAL as soon as one of
        them succeeds, so a few short waits settle it."""
        for attempt in range(50):
            try:
                await self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                await asyncio.sleep(0.02)

    async def migrate(self) -> int:
        """Apply pending migrations; returns the schema version now in force. The version is
        read again inside each write transaction, so processes opening a new database at the
        same moment apply every migration once."""
        for number, statements in enumerate(SQLITE, start=1):
            async with self.transaction() as db:
                rows = await db.execute_fetchall("PRAGMA user_version")
                if int(next(iter(rows))[0]) >= number:
                    continue
                for statement in statements:
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number}")
        return len(SQLITE)

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE ... COMMIT`` under the write lock. On failure the transaction is
        rolled back if SQLite has not already done so, and the original error is raised."""
        async with self.lock:
            try:
                await self.db.execute("BEGIN IMMEDIATE")
                yield self.db
                await self.db.execute("COMMIT")
            except BaseException as exc:
                await rollback(self.db)
                if is_database_failure(exc):
                    self.health.failed(exc)
                raise
            self.health.ok()

    async def one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        """The first row of a query, or None."""
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Every row of a query, in one round trip to the database thread."""
        return list(await self.db.execute_fetchall(sql, tuple(params)))

    async def stream(self, sql: str, params: Iterable[Any] = ()) -> AsyncIterator[Any]:
        """The rows of a query one by one (for exports and dumps of any size)."""
        async with self.db.execute(sql, tuple(params)) as cur:
            async for row in cur:
                yield row

    async def dicts(self, sql: str) -> AsyncIterator[dict[str, Any]]:
        """Like :meth:`stream`, each row as ``column -> value``."""
        async with self.db.execute(sql) as cur:
            names = [d[0] for d in cur.description]
            async for row in cur:
                yield dict(zip(names, row, strict=True))
