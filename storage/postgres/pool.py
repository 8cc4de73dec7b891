"""The PostgreSQL connection pool the backend works through: opening, migrations, writes.

``schema=NAME`` in the URL keeps every table in that schema (created if missing) by setting
``search_path`` on each pooled connection. Migrations (:data:`storage.migrations.POSTGRES`,
counted in ``schema_migrations``) run under ``pg_advisory_lock``, so workers starting together
apply each one once. Every write goes through :meth:`PostgresPool.execute` or
:meth:`PostgresPool.transaction`, which report to the health tracker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from storage.health import HealthTracker
from storage.migrations import POSTGRES
from storage.postgres.sql import quote_ident, split_url

POOL_SIZE = 10
CLOSE_TIMEOUT = 10.0  # seconds


def is_database_failure(exc: BaseException) -> bool:
    """An error of the database or the connection to it, not a refusal the contract expects
    (a key already taken) nor a control-flow exception of the caller."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return False
    return isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError)


class PostgresPool:
    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.dsn, self.schema = split_url(url)
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self.health = HealthTracker("postgres")

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("storage is not open; call await storage.open() first")
        return self._pool

    async def open(self) -> None:
        settings = {"application_name": "surveybot"}
        if self.schema is not None:
            settings["search_path"] = quote_ident(self.schema)
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.pool_size, server_settings=settings
        )
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise

    async def migrate(self) -> int:
        """Apply pending migrations under an advisory lock; returns the schema version."""
        lock_key = f"surveybot.migrate:{self.schema or ''}"
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock_key)
            try:
                if self.schema is not None:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                current = int(
                    await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                )
                for number, statements in enumerate(POSTGRES[current:], start=current + 1):
                    async with conn.transaction():
                        for statement in statements:
                            await conn.execute(statement)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version) VALUES ($1)", number
                        )
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)
        return max(current, len(POSTGRES))

    async def close(self) -> None:
        """Release the pool; connections still held after CLOSE_TIMEOUT (an export left
        unfinished, say) are terminated rather than waited for."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
            except TimeoutError:
                pool.terminate()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction, committed when the block ends; the outcome is
        reported to the health tracker."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn
        except BaseException as exc:
            if is_database_failure(exc):
                self.health.failed(exc)
            raise
        self.health.ok()

    async def execute(self, sql: str, *params: Any) -> str:
        """One writing statement in its own transaction; its command status."""
        try:
            status: str = await self.pool.execute(sql, *params)
        except BaseException as exc:
            if is_database_failure(exc):
                self.health.failed(exc)
            raise
        self.health.ok()
        return status

    async def fetch_writing(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        """One writing statement whose RETURNING rows are wanted."""
        try:
            rows: list[asyncpg.Record] = await self.pool.fetch(sql, *params)
        except BaseException as exc:
            if is_database_failure(exc):
                self.health.failed(exc)
            raise
        self.health.ok()
        return rows
