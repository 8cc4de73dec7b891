"""Session, processed-event and job statements written once for both backends.

Like :mod:`storage.queues`, the SQL is shared (``?`` placeholders, numbered for PostgreSQL by
the dialect) and runs on the primitives each backend provides (``_write``, ``_fetch``, ...).
What differs per backend stays there: inserting a session (idempotency keys), the answer
commit (SQLite's group committer), claims and copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from storage.base import CommitOutcome, InboxRef, Job, OutboxMessage, SessionRecord
from storage.queues import QueueMethods, inbox_handled, outbox_inserts
from storage.rows import (
    JOB_COLUMNS,
    SESSION_COLUMNS,
    UPDATABLE,
    job_from_row,
    next_version,
    opt_time,
    session_from_row,
)


class SessionMethods(QueueMethods):
    """The session and job half of the Storage protocol that both backends share, on the
    primitives of :class:`storage.queues.QueueMethods`."""

    async def _one(self, sql: str, *params: Any) -> Any:
        rows = await self._fetch(self.dialect.sql(sql), params)
        return rows[0] if rows else None

    async def _session_where(self, where: str, *params: Any) -> SessionRecord | None:
        row = await self._one(f"SELECT {SESSION_COLUMNS} FROM sessions {where}", *params)
        return session_from_row(row) if row else None

    async def session_by_key(self, idempotency_key: str) -> SessionRecord | None:
        return await self._session_where("WHERE idempotency_key = ?", idempotency_key)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        return await self._session_where("WHERE id = ?", session_id)

    async def last_asked(self, platform: str, user_id: str, flow_id: str) -> datetime | None:
        row = await self._one(
            "SELECT MAX(COALESCE(send_at, created_at)) FROM sessions WHERE platform = ?"
            " AND user_id = ? AND flow_id = ? AND status != 'failed'",
            platform,
            user_id,
            flow_id,
        )
        return opt_time(row[0]) if row else None

    async def update_session(
        self,
        session_id: str,
        expected_version: int,
        *,
        outbox: Sequence[OutboxMessage] = (),
        **changes: Any,
    ) -> CommitOutcome:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        values = [
            self.dialect.time(v) if isinstance(v, datetime) else int(v) if isinstance(v, bool)
            else v for v in changes.values()
        ]  # fmt: skip
        assignments = "".join(f"{name} = ?, " for name in changes)
        version = next_version(expected_version)
        update = self.dialect.sql(
            f"UPDATE sessions SET {assignments}version = ? WHERE id = ? AND version = ?"
        )
        params = (*values, version, session_id, expected_version)
        if outbox:  # owed only if the session moved: one transaction
            updated = await self._write_if((update, params), outbox_inserts(outbox, self.dialect))
        else:
            updated = await self._write(update, params)
        return CommitOutcome.of(updated == 1, version)

    async def claim_event(
        self,
        event_id: str,
        now: datetime,
        *,
        inbox_id: InboxRef | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> bool:
        insert = self.dialect.sql(
            "INSERT INTO processed_events (event_id, processed_at) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING"
        )
        params = (event_id, self.dialect.time(now))
        then = outbox_inserts(outbox, self.dialect)
        if inbox_id is not None:
            then.append(inbox_handled(inbox_id, now, self.dialect))
        if then:  # owed (and the event done) only if this claim is the first: one transaction
            return await self._write_if((insert, params), then) == 1
        return await self._write(insert, params) == 1

    async def finish_job(self, job_id: int) -> None:
        await self._run("UPDATE jobs SET status = 'done' WHERE id = ?", job_id)

    async def retry_job(self, job_id: int, run_at: datetime, error: str) -> None:
        await self._run(
            "UPDATE jobs SET status = 'pending', run_at = ?, last_error = ? WHERE id = ?",
            self.dialect.time(run_at),
            error,
            job_id,
        )

    async def pending_jobs(self, session_id: str) -> list[Job]:
        rows = await self._fetch(
            self.dialect.sql(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE session_id = ? AND status != 'done'"
                " ORDER BY run_at"
            ),
            (session_id,),
        )
        return [job_from_row(r) for r in rows]
