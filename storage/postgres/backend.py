"""PostgreSQL backend on asyncpg: for several workers sharing one database.

URL: ``postgresql://user:password@host:5432/dbname[?schema=NAME]`` (``postgres://`` too; other
query options go to asyncpg/libpq as usual). ``schema=NAME`` keeps every table in that schema
(created if missing) by setting ``search_path`` on each pooled connection: tests use it for a
fresh schema per test, and one database can hold several installations.

Behaviour matches storage.sqlite.backend exactly; what makes it safe across processes:

- migrations run under ``pg_advisory_lock`` (:mod:`storage.postgres.pool`), so workers
  starting together apply each one once;
- :meth:`commit` / :meth:`update_session` are version checks (``UPDATE ... WHERE version = $n``):
  of two workers moving one session, the second gets ``conflict`` and changes nothing;
- ``processed_events`` is shared: a duplicate delivered to two workers is recorded once;
- :meth:`claim_jobs`, :meth:`inbox_claim` and :meth:`outbox_claim` lease rows with ``FOR
  UPDATE SKIP LOCKED``, so each is handed to one worker at a time.

Times are ``timestamptz``; JSON columns are ``json`` (key order kept, so exports match SQLite).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bot.survey.engine import Answer, SessionState
from storage import dialect
from storage.base import (
    CommitOutcome,
    ExportRow,
    InboxRef,
    Job,
    OutboxMessage,
    SessionRecord,
    SessionStatus,
    StorageHealth,
)
from storage.followup_report import report_statements
from storage.followups import FollowupMethods
from storage.postgres import copy as pg_copy
from storage.postgres.pool import POOL_SIZE, PostgresPool
from storage.postgres.sql import (
    ANSWER_INSERT,
    CLAIM_JOBS,
    COMMIT_UPDATE,
    SESSION_INSERT,
    affected,
    plain,
)
from storage.queues import inbox_handled, outbox_inserts
from storage.reporting import ReportQuery, ReportRows
from storage.rows import (
    EXPORT_SELECT,
    SESSION_COLUMNS,
    answer_params,
    export_from_row,
    export_order,
    job_from_row,
    job_inserts,
    next_version,
    session_from_row,
    session_params,
)
from storage.sessions import SessionMethods

SQL = dialect.POSTGRES


class PostgresStorage(SessionMethods, FollowupMethods):
    dialect = SQL
    groups_writes = False
    one_process = False

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.db = PostgresPool(url, pool_size=pool_size)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.db.pool

    async def open(self) -> None:
        await self.db.open()

    async def migrate(self) -> int:
        return await self.db.migrate()

    async def close(self) -> None:
        await self.db.close()

    def health(self) -> StorageHealth:
        return self.db.health.snapshot()

    # the primitives storage.queues.QueueMethods builds the inbox and outbox on
    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        return affected(await self.db.execute(sql, *params))

    async def _write_all(self, statements: list[tuple[str, list[Any]]]) -> int:
        async with self.db.transaction() as conn:
            return sum([affected(await conn.execute(sql, *params)) for sql, params in statements])

    async def _write_if(
        self, first: tuple[str, Sequence[Any]], then: list[tuple[str, list[Any]]]
    ) -> int:
        async with self.db.transaction() as conn:
            touched = affected(await conn.execute(first[0], *first[1]))
            for sql, params in then if touched else []:
                await conn.execute(sql, *params)
            return touched

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return list(await self.pool.fetch(sql, *params))

    async def _returning(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return list(await self.db.fetch_writing(sql, *params))

    # flows
    async def save_flow_version(self, flow_id: str, version: str, definition: str) -> None:
        await self.db.execute(
            "INSERT INTO flow_versions (flow_id, version, definition) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            flow_id,
            version,
            definition,
        )

    async def load_flow_version(self, flow_id: str, version: str) -> str | None:
        row = await self.pool.fetchval(
            "SELECT definition FROM flow_versions WHERE flow_id = $1 AND version = $2",
            flow_id,
            version,
        )
        return None if row is None else str(row)

    # sessions
    async def create_session(
        self,
        record: SessionRecord,
        *,
        inbox_id: InboxRef | None = None,
        outbox: Sequence[OutboxMessage] = (),
        jobs: Sequence[Job] = (),
    ) -> SessionRecord:
        async with self.db.transaction() as conn:
            inserted = await conn.execute(
                SESSION_INSERT + " ON CONFLICT (idempotency_key) DO NOTHING",
                *session_params(record, SQL),
            )
            existing = None
            if not affected(inserted):  # the key was taken: that session is the answer
                row = await conn.fetchrow(
                    f"SELECT {SESSION_COLUMNS} FROM sessions WHERE idempotency_key = $1",
                    record.idempotency_key,
                )
                if row is None:
                    raise LookupError(f"session with key {record.idempotency_key!r} vanished")
                existing = session_from_row(row)
            owed = [*outbox_inserts(outbox, SQL), *job_inserts(jobs, SQL)]
            for sql, params in owed if existing is None else []:
                await conn.execute(sql, *params)
            if inbox_id is not None:
                await conn.execute(*_flat(inbox_handled(inbox_id, record.created_at, SQL)))
        return record if existing is None else existing

    async def active_session(
        self, platform: str, user_id: str, chat_id: str | None, thread_id: str | None = None
    ) -> SessionRecord | None:
        return await self._session_where(
            "WHERE platform = $1 AND user_id = $2 AND status = 'active'"
            " AND chat_id IS NOT DISTINCT FROM $3 AND thread_id IS NOT DISTINCT FROM $4"
            " ORDER BY created_at DESC LIMIT 1",
            platform,
            user_id,
            chat_id,
            thread_id,
        )

    async def commit(
        self,
        session_id: str,
        expected_version: int,
        *,
        state: SessionState,
        status: SessionStatus,
        now: datetime,
        answer: Answer | None = None,
        event_id: str | None = None,
        inbox_id: InboxRef | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> CommitOutcome:
        # Same order as SQLite: event id, then the version check, then the answer. Raising
        # inside the transaction rolls back whatever the earlier steps wrote.
        version = next_version(expected_version)
        try:
            async with self.db.transaction() as conn:
                if event_id is not None and not affected(
                    await conn.execute(
                        "INSERT INTO processed_events (event_id, processed_at) VALUES ($1, $2)"
                        " ON CONFLICT DO NOTHING",
                        event_id,
                        now,
                    )
                ):
                    raise _Duplicate
                moved = await conn.execute(
                    COMMIT_UPDATE,
                    state.model_dump_json(),
                    status,
                    version,
                    now,
                    session_id,
                    expected_version,
                )
                if affected(moved) != 1:
                    raise _Conflict
                if answer is not None and not affected(
                    await conn.execute(ANSWER_INSERT, *answer_params(session_id, answer, now, SQL))
                ):
                    raise _Duplicate
                if inbox_id is not None:
                    await conn.execute(*_flat(inbox_handled(inbox_id, now, SQL)))
                for sql, params in outbox_inserts(outbox, SQL):
                    await conn.execute(sql, *params)
        except _Duplicate:
            return CommitOutcome(result="duplicate")
        except _Conflict:
            return CommitOutcome(result="conflict")
        return CommitOutcome(result="ok", version=version)

    # invites
    async def create_invite(
        self, token: str, flow_id: str, context: dict[str, str], now: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO invites (token, flow_id, context, created_at) VALUES ($1, $2, $3, $4)",
            token,
            flow_id,
            json.dumps(context),
            now,
        )

    async def consume_invite(self, token: str, now: datetime) -> tuple[str, dict[str, str]] | None:
        rows = await self.db.fetch_writing(
            "UPDATE invites SET used_at = $1 WHERE token = $2 AND used_at IS NULL"
            " RETURNING flow_id, context",
            now,
            token,
        )
        row = rows[0] if rows else None
        return None if row is None else (str(row["flow_id"]), dict(json.loads(row["context"])))

    # jobs
    async def add_job(self, job: Job) -> int:
        [(sql, params)] = job_inserts([job], SQL)
        [(job_id,)] = await self.db.fetch_writing(sql + " RETURNING id", *params)
        return int(job_id)

    async def claim_jobs(self, now: datetime, limit: int, lease: timedelta) -> list[Job]:
        rows = await self.db.fetch_writing(CLAIM_JOBS, now + lease, now, limit)
        return sorted((job_from_row(r) for r in rows), key=lambda j: j.run_at)

    # data
    async def export_rows(
        self, flow_id: str | None = None, since: datetime | None = None
    ) -> AsyncIterator[ExportRow]:
        sql = EXPORT_SELECT + " WHERE a.skipped = 0"
        params: list[Any] = []
        if flow_id is not None:
            params.append(flow_id)
            sql += f" AND s.flow_id = ${len(params)}"
        if since is not None:
            params.append(since)
            sql += f" AND a.answered_at >= ${len(params)}"
        async with self.pool.acquire() as conn, conn.transaction():
            async for row in conn.cursor(sql + export_order(SQL), *params):
                yield export_from_row(row)

    async def erase_user(self, platform: str, user_id: str) -> tuple[int, int]:
        where = "SELECT id FROM sessions WHERE platform = $1 AND user_id = $2"
        async with self.db.transaction() as conn:
            answers = await conn.execute(
                f"DELETE FROM answers WHERE session_id IN ({where})", platform, user_id
            )
            await conn.execute(f"DELETE FROM jobs WHERE session_id IN ({where})", platform, user_id)
            for queue in ("inbox", "outbox"):
                await conn.execute(
                    f"DELETE FROM {queue} WHERE platform = $1 AND user_id = $2", platform, user_id
                )
            sessions = await conn.execute(
                "DELETE FROM sessions WHERE platform = $1 AND user_id = $2", platform, user_id
            )
        return affected(answers), affected(sessions)

    # --- copy (issue 7) ---
    async def schema_version(self) -> int:
        return int(
            await self.pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        )

    async def copy_tables(self) -> list[str]:
        return await pg_copy.copy_tables(self.pool)

    def dump_rows(self, table: str) -> AsyncIterator[dict[str, Any]]:
        return pg_copy.dump_rows(self.pool, table)

    async def load_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        return await pg_copy.load_rows(self.pool, table, rows)

    async def count_rows(self, table: str) -> int:
        return await pg_copy.count_rows(self.pool, table)

    async def clear_tables(self) -> None:
        await pg_copy.clear_tables(self.pool)

    # --- reporting (issue 6) ---
    async def report_rows(self, query: ReportQuery) -> ReportRows:
        """The report's statements in one read-only snapshot (REPEATABLE READ), each row filed
        under its ``section``; values as plain as SQLite's (times as ISO text, numerics as int
        or float)."""
        rows: ReportRows = {}
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                for statement in report_statements(query, "postgres"):
                    for record in await conn.fetch(statement.sql, *statement.params):
                        row = {k: plain(v) for k, v in record.items()}
                        rows.setdefault(row["section"], []).append(row)
        return rows


def _flat(statement: tuple[str, list[Any]]) -> tuple[Any, ...]:
    """``(sql, params)`` as asyncpg's ``execute(sql, *params)`` takes them."""
    return (statement[0], *statement[1])


class _Duplicate(Exception):
    pass


class _Conflict(Exception):
    pass
