"""SQLite backend on aiosqlite: the embedded default.

One connection in WAL mode, autocommit off by hand: every write runs as ``BEGIN IMMEDIATE ...
COMMIT`` under an asyncio lock, so coroutines sharing the connection never interleave inside a
transaction. The schema lives in :mod:`storage.migrations` (``PRAGMA user_version``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bot.survey.engine import Answer, SessionState
from storage.base import (
    CommitResult,
    ExportRow,
    Job,
    SessionRecord,
    SessionStatus,
    iso,
    parse_iso,
)
from storage.migrations import SQLITE
from storage.reporting import ReportQuery, ReportRows, Statement, report_sql
from storage.sqlite import copy as sqlite_copy
from storage.sqlite.batch import AnswerCommit, GroupCommitter

SESSION_COLUMNS = (
    "id, flow_id, flow_version, platform, user_id, chat_id, user_name, locale, context, "
    "triggered_by, status, state, version, idempotency_key, created_at, updated_at, send_at, "
    "sent_at, expires_at, completed_at, reminded, error, prompted, prompt_message_id"
)
UPDATABLE = {
    "status", "sent_at", "expires_at", "reminded", "error", "chat_id", "send_at", "prompted",
    "prompt_message_id",
}  # fmt: skip


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs.db``, ``sqlite:///:memory:`` -> a path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url!r} (expected sqlite:///path/to/file.db)")
    return url[len("sqlite:///") :]


def session_params(r: SessionRecord) -> tuple[Any, ...]:
    return (
        r.id, r.flow_id, r.flow_version, r.platform, r.user_id, r.chat_id, r.user_name,
        r.locale, json.dumps(r.context), r.triggered_by, r.status, r.state.model_dump_json(),
        r.version, r.idempotency_key, iso(r.created_at), iso(r.updated_at), _opt(r.send_at),
        _opt(r.sent_at), _opt(r.expires_at), _opt(r.completed_at), int(r.reminded), r.error,
        r.prompted, r.prompt_message_id,
    )  # fmt: skip


def session_from_row(row: Iterable[Any]) -> SessionRecord:
    (sid, flow_id, flow_version, platform, user_id, chat_id, user_name, locale, context,
     triggered_by, status, state, version, key, created, updated, send_at, sent_at, expires,
     completed, reminded, error, prompted, prompt_message_id) = row  # fmt: skip
    return SessionRecord(
        id=sid, flow_id=flow_id, flow_version=flow_version, platform=platform, user_id=user_id,
        chat_id=chat_id, user_name=user_name, locale=locale, context=_json(context),
        triggered_by=triggered_by, status=status,
        state=SessionState.model_validate_json(state), version=version, idempotency_key=key,
        created_at=_dt(created), updated_at=_dt(updated), send_at=_odt(send_at),
        sent_at=_odt(sent_at), expires_at=_odt(expires), completed_at=_odt(completed),
        reminded=bool(reminded), error=error, prompted=prompted,
        prompt_message_id=prompt_message_id,
    )  # fmt: skip


def answer_params(session_id: str, a: Answer, now: datetime) -> tuple[Any, ...]:
    return (
        session_id, a.question_id, a.question_index, a.metric, a.value, a.option, a.text,
        int(a.skipped), a.scale_min, a.scale_max, iso(now),
    )  # fmt: skip


def export_from_row(row: Iterable[Any]) -> ExportRow:
    (sid, flow_id, version, qid, metric, value, option, text, platform, user_id, chat_id,
     locale, context, triggered_by, answered_at) = row  # fmt: skip
    return ExportRow(
        session_id=sid, flow_id=flow_id, flow_version=version, question_id=qid, metric=metric,
        value=value if value is not None else option, text=text, platform=platform,
        user_id=user_id, chat_id=chat_id, locale=locale, context=_json(context),
        triggered_by=triggered_by, answered_at=_dt(answered_at),
    )  # fmt: skip


EXPORT_SELECT = (
    "SELECT a.session_id, s.flow_id, s.flow_version, a.question_id, a.metric, a.value, a.option,"
    " a.text, s.platform, s.user_id, s.chat_id, s.locale, s.context, s.triggered_by,"
    " a.answered_at FROM answers a JOIN sessions s ON s.id = a.session_id"
)


def _opt(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def _dt(text: str | datetime) -> datetime:
    return text if isinstance(text, datetime) else parse_iso(text)


def _odt(text: str | datetime | None) -> datetime | None:
    return None if text is None else _dt(text)


def _json(raw: str | dict[str, str]) -> dict[str, str]:
    return raw if isinstance(raw, dict) else dict(json.loads(raw))


class SQLiteStorage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._batcher: GroupCommitter | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("storage is not open; call await storage.open() first")
        return self._db

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
        for number, script in enumerate(SQLITE, start=1):
            async with self._tx() as db:
                rows = await db.execute_fetchall("PRAGMA user_version")
                if int(next(iter(rows))[0]) >= number:
                    continue
                for statement in filter(str.strip, script.split(";")):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number}")
        return len(SQLITE)

    @property
    def _writer(self) -> GroupCommitter:
        if self._batcher is None:
            self._batcher = GroupCommitter(self.db, self._lock)
        return self._batcher

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """One round trip to the database thread (execute + fetch + close together)."""
        return list(await self.db.execute_fetchall(sql, tuple(params)))

    # flows
    async def save_flow_version(self, flow_id: str, version: str, definition: str) -> None:
        await self._writer.execute(
            "INSERT OR IGNORE INTO flow_versions (flow_id, version, definition,"
            " created_at) VALUES (?, ?, ?, datetime('now'))",
            (flow_id, version, definition),
        )

    async def load_flow_version(self, flow_id: str, version: str) -> str | None:
        row = await self._one(
            "SELECT definition FROM flow_versions WHERE flow_id = ? AND version = ?",
            (flow_id, version),
        )
        return str(row[0]) if row else None

    # sessions
    async def create_session(self, record: SessionRecord) -> SessionRecord:
        placeholders = ", ".join("?" * len(SESSION_COLUMNS.split(",")))
        inserted = await self._writer.execute(
            f"INSERT OR IGNORE INTO sessions ({SESSION_COLUMNS}) VALUES ({placeholders})",
            session_params(record),
        )
        if inserted:
            return record
        existing = await self.session_by_key(record.idempotency_key or "")
        if existing is None:
            raise sqlite3.IntegrityError(f"session id {record.id!r} already exists")
        return existing

    async def session_by_key(self, idempotency_key: str) -> SessionRecord | None:
        row = await self._one(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE idempotency_key = ?",
            (idempotency_key,),
        )
        return session_from_row(row) if row else None

    async def get_session(self, session_id: str) -> SessionRecord | None:
        row = await self._one(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        return session_from_row(row) if row else None

    async def active_session(
        self, platform: str, user_id: str, chat_id: str | None
    ) -> SessionRecord | None:
        row = await self._one(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE platform = ? AND user_id = ?"
            " AND status = 'active' AND COALESCE(chat_id, '') = COALESCE(?, '')"
            " ORDER BY created_at DESC LIMIT 1",
            (platform, user_id, chat_id),
        )
        return session_from_row(row) if row else None

    async def last_asked(self, platform: str, user_id: str, flow_id: str) -> datetime | None:
        row = await self._one(
            "SELECT MAX(COALESCE(send_at, created_at)) FROM sessions WHERE platform = ?"
            " AND user_id = ? AND flow_id = ? AND status != 'failed'",
            (platform, user_id, flow_id),
        )
        return _odt(row[0]) if row else None

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
    ) -> CommitResult:
        return await self._writer.commit_answer(
            AnswerCommit(
                session_id=session_id,
                expected_version=expected_version,
                state_json=state.model_dump_json(),
                status=status,
                now=iso(now),
                answer=answer_params(session_id, answer, now) if answer is not None else None,
                event_id=event_id,
            )
        )

    async def update_session(
        self, session_id: str, expected_version: int, **changes: Any
    ) -> CommitResult:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        values = [
            iso(v) if isinstance(v, datetime) else int(v) if isinstance(v, bool) else v
            for v in changes.values()
        ]
        assignments = "".join(f"{name} = ?, " for name in changes)
        updated = await self._writer.execute(
            f"UPDATE sessions SET {assignments}version = version + 1 WHERE id = ? AND version = ?",
            (*values, session_id, expected_version),
        )
        return "ok" if updated == 1 else "conflict"

    async def claim_event(self, event_id: str, now: datetime) -> bool:
        inserted = await self._writer.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, processed_at) VALUES (?, ?)",
            (event_id, iso(now)),
        )
        return inserted == 1

    # invites
    async def create_invite(
        self, token: str, flow_id: str, context: dict[str, str], now: datetime
    ) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO invites (token, flow_id, context, created_at) VALUES (?, ?, ?, ?)",
                (token, flow_id, json.dumps(context), iso(now)),
            )

    async def consume_invite(self, token: str, now: datetime) -> tuple[str, dict[str, str]] | None:
        async with self._tx() as db:
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
        return str(row[0]), _json(row[1])

    # jobs
    async def add_job(self, job: Job) -> int:
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO jobs (kind, session_id, run_at, attempts) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (kind, session_id) DO UPDATE SET run_at = excluded.run_at,"
                " status = 'pending' RETURNING id",
                (job.kind, job.session_id, iso(job.run_at), job.attempts),
            )
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def claim_jobs(self, now: datetime, limit: int, lease: timedelta) -> list[Job]:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE jobs SET status = 'running', leased_until = ?, attempts = attempts + 1"
                " WHERE id IN (SELECT id FROM jobs WHERE run_at <= ? AND (status = 'pending'"
                " OR (status = 'running' AND leased_until < ?)) ORDER BY run_at LIMIT ?)"
                " RETURNING id, kind, session_id, run_at, attempts, last_error",
                (iso(now + lease), iso(now), iso(now), limit),
            )
            rows = await cur.fetchall()
        jobs = [
            Job(id=r[0], kind=r[1], session_id=r[2], run_at=_dt(r[3]), attempts=r[4],
                last_error=r[5])
            for r in rows
        ]  # fmt: skip
        return sorted(jobs, key=lambda j: j.run_at)

    async def finish_job(self, job_id: int) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE jobs SET status = 'done' WHERE id = ?", (job_id,))

    async def retry_job(self, job_id: int, run_at: datetime, error: str) -> None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE jobs SET status = 'pending', run_at = ?, last_error = ? WHERE id = ?",
                (iso(run_at), error, job_id),
            )

    async def pending_jobs(self, session_id: str) -> list[Job]:
        rows = await self._all(
            "SELECT id, kind, session_id, run_at, attempts, last_error FROM jobs"
            " WHERE session_id = ? AND status != 'done' ORDER BY run_at",
            (session_id,),
        )
        return [
            Job(id=r[0], kind=r[1], session_id=r[2], run_at=_dt(r[3]), attempts=r[4],
                last_error=r[5])
            for r in rows
        ]  # fmt: skip

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
        sql += " ORDER BY a.answered_at, a.session_id, a.question_index"
        async with self.db.execute(sql, params) as cur:
            async for row in cur:
                yield export_from_row(row)

    async def erase_user(self, platform: str, user_id: str) -> tuple[int, int]:
        where = "SELECT id FROM sessions WHERE platform = ? AND user_id = ?"
        async with self._tx() as db:
            answers = await db.execute(
                f"DELETE FROM answers WHERE session_id IN ({where})", (platform, user_id)
            )
            await db.execute(f"DELETE FROM jobs WHERE session_id IN ({where})", (platform, user_id))
            sessions = await db.execute(
                "DELETE FROM sessions WHERE platform = ? AND user_id = ?", (platform, user_id)
            )
            return answers.rowcount, sessions.rowcount

    # --- copy (issue 7) --------------------------------------------------------------------
    async def schema_version(self) -> int:
        return await sqlite_copy.schema_version(self)

    async def copy_tables(self) -> list[str]:
        return await sqlite_copy.copy_tables(self)

    def dump_rows(self, table: str) -> AsyncIterator[dict[str, Any]]:
        return sqlite_copy.dump_rows(self, table)

    async def load_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        return await sqlite_copy.load_rows(self, table, rows)

    async def count_rows(self, table: str) -> int:
        return await sqlite_copy.count_rows(self, table)

    async def clear_tables(self) -> None:
        await sqlite_copy.clear_tables(self)

    # --- reporting (issue 6) ---------------------------------------------------------------
    async def report_rows(self, query: ReportQuery) -> ReportRows:
        """Two read-only connections at once: the answers statement (the heaviest) on one,
        the others one after another on the second. WAL lets them read while answers are
        being committed; aiosqlite gives each connection a thread and SQLite releases the GIL
        while it works, so the two use two cores. An in-memory database has one connection:
        there the statements run one after the other."""
        statements = report_sql(query, "sqlite")
        if self.path == ":memory:":
            async with self._lock:
                results = [await _fetch(self.db, s.sql, s.params) for s in statements]
        else:
            uri = _read_only_uri(self.path)
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
