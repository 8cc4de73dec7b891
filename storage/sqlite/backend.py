"""SQLite backend on aiosqlite: the embedded default.

The connection, its transactions and migrations (``PRAGMA user_version``) are
:mod:`storage.sqlite.connection`; hot-path writes are batched by :mod:`storage.sqlite.batch`;
records <-> rows are shared with PostgreSQL (:mod:`storage.rows`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from bot.survey.engine import Answer, SessionState
from storage import dialect
from storage.base import (
    CommitOutcome,
    ExportRow,
    InboxEvent,
    InboxRef,
    Job,
    OutboxMessage,
    SessionRecord,
    SessionStatus,
    StorageHealth,
    iso,
)
from storage.followups import FollowupMethods
from storage.queues import (
    INBOX_NEW,
    inbox_handled,
    inbox_keep_params,
    inbox_params,
    outbox_inserts,
    outbox_params,
)
from storage.reporting import ReportQuery, ReportRows
from storage.rows import (
    EXPORT_SELECT,
    JOB_COLUMNS,
    SESSION_COLUMNS,
    answer_params,
    export_from_row,
    export_order,
    job_from_row,
    job_inserts,
    json_dict,
    next_version,
    placeholders,
    session_params,
)
from storage.schema import SESSIONS
from storage.sessions import SessionMethods
from storage.sqlite import copy as sqlite_copy
from storage.sqlite import reports as sqlite_reports
from storage.sqlite.batch import AnswerCommit, Conditional, SetStatement
from storage.sqlite.connection import SQLiteConnection, sqlite_path

INBOX_PUT = SetStatement(
    f"INSERT INTO inbox ({INBOX_NEW}) VALUES ",
    len(INBOX_NEW.split(",")),
    " ON CONFLICT (platform, event_id) DO NOTHING RETURNING platform, event_id",
    key_width=2,
)
INBOX_DONE_SET = SetStatement(
    "WITH v(id, at) AS (VALUES ",
    2,
    ") UPDATE inbox SET status = 'done', done_at = v.at, lease_until = NULL"
    " FROM v WHERE inbox.id = v.id",
)
OUTBOX_SENT = SetStatement(
    "WITH v(id, at, message_id) AS (VALUES ",
    3,
    ") UPDATE outbox SET status = 'sent', sent_at = v.at, platform_message_id = v.message_id,"
    " lease_until = NULL FROM v WHERE outbox.id = v.id",
)

SQL = dialect.SQLITE


class SQLiteStorage(SessionMethods, FollowupMethods):
    dialect = SQL
    groups_writes = True
    one_process = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self.conn = SQLiteConnection(self.path)
        self._flow_versions: set[tuple[str, str]] = set()  # stored already (rows never change)

    @property
    def db(self) -> aiosqlite.Connection:
        return self.conn.db

    async def open(self) -> None:
        await self.conn.open()

    async def migrate(self) -> int:
        return await self.conn.migrate()

    async def close(self) -> None:
        await self.conn.close()

    def health(self) -> StorageHealth:
        return self.conn.health.snapshot()

    # the primitives storage.queues.QueueMethods builds the inbox and outbox on
    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        return await self.conn.writer.execute(sql, params)

    async def _write_all(self, statements: list[tuple[str, list[Any]]]) -> int:
        if len(statements) == 1:
            return await self._write(*statements[0])
        async with self.conn.transaction() as db:
            return sum([(await db.execute(sql, params)).rowcount for sql, params in statements])

    async def _write_if(
        self, first: tuple[str, Sequence[Any]], then: list[tuple[str, list[Any]]]
    ) -> int:
        return await self.conn.writer.conditional(Conditional(first, then))

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return await self.conn.all(sql, params)

    async def _returning(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return list(await self.conn.writer.fetch(sql, params))

    async def _returning_last(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return list(await self.conn.writer.fetch(sql, params, last=True))

    # the hot queue writes go through the group committer as sets (one statement per batch)
    async def inbox_put(self, events: Sequence[InboxEvent]) -> int:
        rows = [inbox_params(e, SQL) for e in events]
        return await self.conn.writer.write_rows(INBOX_PUT, rows) if rows else 0

    async def inbox_done(self, inbox_id: int, now: datetime) -> None:
        await self.conn.writer.write_rows(INBOX_DONE_SET, [(inbox_id, iso(now))])

    async def outbox_sent(
        self,
        outbox_id: int,
        platform_message_id: str | None,
        at: datetime,
        *,
        linger: bool = False,
    ) -> None:
        await self.conn.writer.write_rows(
            OUTBOX_SENT, [(outbox_id, iso(at), platform_message_id)], linger=linger
        )

    def flush(self) -> None:
        self.conn.writer.release()

    # flows
    async def save_flow_version(self, flow_id: str, version: str, definition: str) -> None:
        if (flow_id, version) in self._flow_versions:
            return
        await self.conn.writer.execute(
            "INSERT OR IGNORE INTO flow_versions (flow_id, version, definition,"
            " created_at) VALUES (?, ?, ?, datetime('now'))",
            (flow_id, version, definition),
        )
        self._flow_versions.add((flow_id, version))

    async def load_flow_version(self, flow_id: str, version: str) -> str | None:
        row = await self.conn.one(
            "SELECT definition FROM flow_versions WHERE flow_id = ? AND version = ?",
            (flow_id, version),
        )
        return str(row[0]) if row else None

    # sessions
    async def create_session(
        self,
        record: SessionRecord,
        *,
        inbox_id: InboxRef | None = None,
        outbox: Sequence[OutboxMessage] = (),
        jobs: Sequence[Job] = (),
    ) -> SessionRecord:
        insert = (
            f"INSERT OR IGNORE INTO sessions ({SESSION_COLUMNS})"
            f" VALUES ({placeholders(len(SESSIONS.columns))})"
        )
        # one batch, one round trip: the session; only if it is new, what it owes and its
        # jobs; either way the inbox row done (its session exists: this one, or the one with
        # its idempotency key; a clash of two random 72-bit ids is not planned for)
        done = [inbox_handled(inbox_id, record.created_at, SQL)] if inbox_id is not None else []
        inserted = await self.conn.writer.conditional(Conditional(
            (insert, session_params(record, SQL)),
            then=[*outbox_inserts(outbox, SQL), *job_inserts(jobs, SQL)], always=done,
        ))  # fmt: skip
        if inserted:
            return record
        existing = await self.session_by_key(record.idempotency_key or "")
        if existing is None:
            raise sqlite3.IntegrityError(f"session id {record.id!r} already exists")
        return existing

    async def active_session(
        self, platform: str, user_id: str, chat_id: str | None, thread_id: str | None = None
    ) -> SessionRecord | None:
        return await self._session_where(
            "WHERE platform = ? AND user_id = ? AND status = 'active'"
            " AND COALESCE(chat_id, '') = COALESCE(?, '')"
            " AND COALESCE(thread_id, '') = COALESCE(?, '') ORDER BY created_at DESC LIMIT 1",
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
        version = next_version(expected_version)
        result = await self.conn.writer.commit_answer(
            AnswerCommit(
                session_id=session_id,
                expected_version=expected_version,
                new_version=version,
                state_json=state.model_dump_json(),
                status=status,
                now=iso(now),
                answer=answer_params(session_id, answer, now, SQL) if answer else None,
                event_id=event_id,
                inbox_id=inbox_id if isinstance(inbox_id, int) else None,
                inbox_event=tuple(inbox_keep_params(inbox_id.handled(now), SQL))
                if isinstance(inbox_id, InboxEvent)
                else None,
                outbox=tuple(outbox_params(m, SQL) for m in outbox),
            )
        )
        return CommitOutcome(result=result, version=version if result == "ok" else None)

    # invites
    async def create_invite(
        self, token: str, flow_id: str, context: dict[str, str], now: datetime
    ) -> None:
        async with self.conn.transaction() as db:
            await db.execute(
                "INSERT INTO invites (token, flow_id, context, created_at) VALUES (?, ?, ?, ?)",
                (token, flow_id, json.dumps(context), iso(now)),
            )

    async def consume_invite(self, token: str, now: datetime) -> tuple[str, dict[str, str]] | None:
        async with self.conn.transaction() as db:
            cur = await db.execute(
                "UPDATE invites SET used_at = ? WHERE token = ? AND used_at IS NULL",
                (iso(now), token),
            )
            if cur.rowcount != 1:
                return None
            async with db.execute(
                "SELECT flow_id, context FROM invites WHERE token = ?", (token,)
            ) as rows:
                row = await rows.fetchone()
        assert row is not None
        return str(row[0]), json_dict(row[1])

    # jobs
    async def add_job(self, job: Job) -> int:
        [(sql, params)] = job_inserts([job], SQL)
        (row,) = await self.conn.writer.fetch(sql + " RETURNING id", params)
        return int(row[0])

    async def claim_jobs(self, now: datetime, limit: int, lease: timedelta) -> list[Job]:
        rows = await self.conn.writer.fetch(
            "UPDATE jobs SET status = 'running', leased_until = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM jobs WHERE run_at <= ? AND (status = 'pending'"
            " OR (status = 'running' AND leased_until < ?)) ORDER BY run_at LIMIT ?)"
            f" RETURNING {JOB_COLUMNS}",
            (iso(now + lease), iso(now), iso(now), limit),
        )
        return sorted(map(job_from_row, rows), key=lambda j: j.run_at)

    # data
    async def export_rows(
        self, flow_id: str | None = None, since: datetime | None = None
    ) -> AsyncIterator[ExportRow]:
        sql = EXPORT_SELECT + " WHERE a.skipped = 0"
        params: list[Any] = []
        if flow_id is not None:
            sql += " AND s.flow_id = ?"
            params.append(flow_id)
        if since is not None:
            sql += " AND a.answered_at >= ?"
            params.append(iso(since))
        async for row in self.conn.stream(sql + export_order(SQL), params):
            yield export_from_row(row)

    async def erase_user(self, platform: str, user_id: str) -> tuple[int, int]:
        where = "SELECT id FROM sessions WHERE platform = ? AND user_id = ?"
        async with self.conn.transaction() as db:
            answers = await db.execute(
                f"DELETE FROM answers WHERE session_id IN ({where})", (platform, user_id)
            )
            await db.execute(f"DELETE FROM jobs WHERE session_id IN ({where})", (platform, user_id))
            for queue in ("inbox", "outbox"):
                await db.execute(
                    f"DELETE FROM {queue} WHERE platform = ? AND user_id = ?", (platform, user_id)
                )
            sessions = await db.execute(
                "DELETE FROM sessions WHERE platform = ? AND user_id = ?", (platform, user_id)
            )
            return answers.rowcount, sessions.rowcount

    # --- copy (issue 7) --------------------------------------------------------------------
    async def schema_version(self) -> int:
        return await sqlite_copy.schema_version(self.conn)

    async def copy_tables(self) -> list[str]:
        return await sqlite_copy.copy_tables(self.conn)

    def dump_rows(self, table: str) -> AsyncIterator[dict[str, Any]]:
        return sqlite_copy.dump_rows(self.conn, table)

    async def load_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        return await sqlite_copy.load_rows(self.conn, table, rows)

    async def count_rows(self, table: str) -> int:
        return await sqlite_copy.count_rows(self.conn, table)

    async def clear_tables(self) -> None:
        self._flow_versions.clear()
        await sqlite_copy.clear_tables(self.conn)

    # --- reporting (issue 6) ---------------------------------------------------------------
    async def report_rows(self, query: ReportQuery) -> ReportRows:
        return await sqlite_reports.report_rows(self.conn, query)
