"""The inbox and the outbox, written once for both backends.

The SQL is shared (``?`` placeholders, numbered for PostgreSQL by the dialect; the claims get
``FOR UPDATE SKIP LOCKED`` there), so are the row mappers. :class:`QueueMethods` implements
the Storage protocol's ``inbox_*`` / ``outbox_*`` methods on three primitives each backend
provides: ``_write`` (one statement, its own transaction, rows touched), ``_write_all``
(several, in one transaction), ``_fetch`` (a read) and ``_returning`` (one writing statement
whose ``RETURNING`` rows are wanted).

A claim leases rows (``lease_until``) and counts an attempt; it hands out only the head of
each ordering key (the inbox's ``platform, key``, the outbox's ``chat``): the oldest pending
row, and nothing while another row of that key is leased. So one customer's events, and one
chat's messages, go one at a time and in order, across any number of workers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.chat import Address
from storage.base import InboxEvent, InboxRef, Lane, OutboxMessage, OutboxStatus
from storage.dialect import Dialect
from storage.rows import as_time, opt_time, placeholders
from storage.schema import INBOX, OUTBOX

MAX_ROWS = 500  # rows per multi-row INSERT (SQLite allows 32766 values per statement)
INBOX_NEW = "platform, event_id, key, user_id, payload, received_at, next_attempt_at"
OUTBOX_NEW = (
    "session_id, platform, user_id, chat, address, lane, kind, body, created_at, next_attempt_at"
)
# A row is the head of its key when no older row of the key is pending and none is leased.
_HEAD = (
    "NOT EXISTS (SELECT 1 FROM {table} o WHERE {same} AND o.status = 'pending'"
    " AND (o.id < r.id OR o.lease_until >= ?))"
)
_CLAIM = (
    "WITH due AS (SELECT r.id FROM {table} r WHERE r.status = 'pending'"
    " AND r.next_attempt_at <= ? AND (r.lease_until IS NULL OR r.lease_until < ?) AND {head}"
    " ORDER BY {order} LIMIT ?{lock})"
    " UPDATE {table} SET lease_until = ?, attempts = {table}.attempts + 1"
    " FROM due WHERE {table}.id = due.id RETURNING {returning}"
)
_LANES = ("interactive", "bulk", "webhook")
_CHAT = ("interactive", "bulk")  # what chat senders claim: not the webhook lane
INBOX_DONE = "UPDATE inbox SET status = 'done', done_at = ?, lease_until = NULL WHERE id = ?"
# One event stored in the state its handler gives (the inbox's fast path, bot/conversation/
# first.py): done, pending and leased to the handler, or pending with a retry time. An event
# stored meanwhile (the same event's other write) takes that state unless it is done already.
INBOX_KEPT = (
    "platform, event_id, key, user_id, payload, received_at, status, attempts,"
    " next_attempt_at, lease_until, last_error, done_at"
)
INBOX_KEEP = (
    f"INSERT INTO inbox ({INBOX_KEPT}) VALUES ({placeholders(12)})"
    " ON CONFLICT (platform, event_id) DO UPDATE SET status = excluded.status,"
    " attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,"
    " lease_until = excluded.lease_until, last_error = excluded.last_error,"
    " done_at = excluded.done_at WHERE inbox.status = 'pending'"
)


def _qualified(columns: list[str], table: str) -> str:
    return ", ".join(f"{table}.{c}" for c in columns)


def claim_sql(table: str, same: str, order: str, lock: str) -> str:
    head = _HEAD.format(table=table, same=same)
    names = (INBOX if table == "inbox" else OUTBOX).names()
    return _CLAIM.format(
        table=table, head=head, order=order, lock=lock, returning=_qualified(names, table)
    )


def insert_sql(table: str, columns: str, rows: int) -> str:
    one = f"({placeholders(len(columns.split(',')))})"
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * rows)}"


def inbox_params(e: InboxEvent, dialect: Dialect) -> tuple[Any, ...]:
    received = dialect.time(e.received_at)
    return (e.platform, e.event_id, e.key, e.user_id, e.payload, received, received)


def outbox_params(m: OutboxMessage, dialect: Dialect) -> tuple[Any, ...]:
    created = dialect.time(m.created_at)
    due = dialect.time(m.next_attempt_at) if m.next_attempt_at else created
    return (
        m.session_id, m.address.platform, m.address.user_id, m.stream,
        m.address.model_dump_json(), m.lane, m.kind, m.body, created, due,
    )  # fmt: skip


def inbox_keep_params(e: InboxEvent, dialect: Dialect) -> list[Any]:
    t = dialect.time
    return [
        e.platform, e.event_id, e.key, e.user_id, e.payload, t(e.received_at), e.status,
        e.attempts, t(e.next_attempt_at or e.received_at), t(e.lease_until), e.last_error,
        t(e.done_at),
    ]  # fmt: skip


def inbox_handled(ref: InboxRef, now: datetime, dialect: Dialect) -> tuple[str, list[Any]]:
    """The statement that records a handled event in its commit's transaction: the stored row
    ``ref`` marked done, or the event ``ref`` (not stored yet) stored done."""
    if isinstance(ref, InboxEvent):
        return dialect.sql(INBOX_KEEP), inbox_keep_params(ref.handled(now), dialect)
    return dialect.sql(INBOX_DONE), [dialect.time(now), ref]


def inbox_from_row(row: Sequence[Any]) -> InboxEvent:
    (row_id, platform, event_id, key, user_id, payload, received_at, status, attempts,
     next_attempt_at, lease_until, last_error, done_at) = row  # fmt: skip
    return InboxEvent(
        id=row_id, platform=platform, event_id=event_id, key=key, user_id=user_id,
        payload=payload, received_at=as_time(received_at), status=status, attempts=attempts,
        next_attempt_at=opt_time(next_attempt_at), lease_until=opt_time(lease_until),
        last_error=last_error, done_at=opt_time(done_at),
    )  # fmt: skip


def outbox_from_row(row: Sequence[Any]) -> OutboxMessage:
    (row_id, session_id, _platform, _user_id, _chat, address, lane, kind, body, created_at,
     status, attempts, next_attempt_at, lease_until, sent_at, platform_message_id,
     last_error) = row  # fmt: skip
    return OutboxMessage(
        id=row_id, session_id=session_id, address=Address.model_validate_json(address),
        lane=lane, kind=kind, body=body, created_at=as_time(created_at), status=status,
        attempts=attempts, next_attempt_at=opt_time(next_attempt_at),
        lease_until=opt_time(lease_until), sent_at=opt_time(sent_at),
        platform_message_id=platform_message_id, last_error=last_error,
    )  # fmt: skip


def chunks(rows: Sequence[Any]) -> list[Sequence[Any]]:
    return [rows[i : i + MAX_ROWS] for i in range(0, len(rows), MAX_ROWS)]


def inbox_inserts(events: Sequence[InboxEvent], dialect: Dialect) -> list[tuple[str, list[Any]]]:
    """Multi-row inserts that skip events already stored (by platform and event id)."""
    return [
        (
            dialect.sql(
                insert_sql("inbox", INBOX_NEW, len(part))
                + " ON CONFLICT (platform, event_id) DO NOTHING"
            ),
            [v for e in part for v in inbox_params(e, dialect)],
        )
        for part in chunks(events)
    ]


def outbox_inserts(
    messages: Sequence[OutboxMessage], dialect: Dialect
) -> list[tuple[str, list[Any]]]:
    return [
        (
            dialect.sql(insert_sql("outbox", OUTBOX_NEW, len(part))),
            [v for m in part for v in outbox_params(m, dialect)],
        )
        for part in chunks(messages)
    ]


class QueueMethods:
    """The inbox/outbox half of the Storage protocol, for any backend that provides the
    three primitives below (see the module docstring)."""

    dialect: ClassVar[Dialect]

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        raise NotImplementedError

    async def _write_all(self, statements: list[tuple[str, list[Any]]]) -> int:
        raise NotImplementedError

    async def _write_if(
        self, first: tuple[str, Sequence[Any]], then: list[tuple[str, list[Any]]]
    ) -> int:
        """``first``, then (only if it touched a row) ``then``, in one transaction: rows
        ``first`` touched."""
        raise NotImplementedError

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        raise NotImplementedError

    async def _returning(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        raise NotImplementedError

    async def _returning_last(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """:meth:`_returning`, after every other write batched with it (an outbox claim sees
        the rows the answers committed beside it owe)."""
        return await self._returning(sql, params)

    async def _run(self, sql: str, *params: Any) -> int:
        return await self._write(self.dialect.sql(sql), params)

    # inbox
    async def inbox_put(self, events: Sequence[InboxEvent]) -> int:
        return await self._write_all(inbox_inserts(events, self.dialect)) if events else 0

    async def inbox_claim(self, limit: int, lease: timedelta, now: datetime) -> list[InboxEvent]:
        sql = claim_sql("inbox", "o.platform = r.platform AND o.key = r.key", "r.id",
                        self.dialect.skip_locked)  # fmt: skip
        t = self.dialect.time
        rows = await self._returning(
            self.dialect.sql(sql), (t(now), t(now), t(now), limit, t(now + lease))
        )
        return sorted(map(inbox_from_row, rows), key=lambda e: e.id or 0)

    async def inbox_done(self, inbox_id: int, now: datetime) -> None:
        await self._run(INBOX_DONE, self.dialect.time(now), inbox_id)

    async def inbox_keep(self, event: InboxEvent) -> int | None:
        rows = await self._returning(
            self.dialect.sql(INBOX_KEEP + " RETURNING id"), inbox_keep_params(event, self.dialect)
        )
        return int(rows[0][0]) if rows else None

    async def inbox_pending_keys(
        self, keys: Collection[tuple[str, str]] | None = None
    ) -> set[tuple[str, str]]:
        sql = "SELECT DISTINCT platform, key FROM inbox WHERE status = 'pending'"
        if keys is not None:
            if not keys:
                return set()
            wanted = set(keys)
            sql += f" AND key IN ({placeholders(len(wanted))})"
        rows = await self._fetch(self.dialect.sql(sql), [k for _, k in keys or ()])
        found = {(str(p), str(k)) for p, k in rows}
        return found if keys is None else found & wanted

    async def inbox_failed(self, inbox_id: int, error: str, retry_at: datetime | None) -> None:
        if retry_at is None:
            await self._run(
                "UPDATE inbox SET status = 'quarantined', lease_until = NULL, last_error = ?"
                " WHERE id = ?",
                error,
                inbox_id,
            )
        else:
            await self._run(
                "UPDATE inbox SET next_attempt_at = ?, lease_until = NULL, last_error = ?"
                " WHERE id = ? AND status = 'pending'",
                self.dialect.time(retry_at),
                error,
                inbox_id,
            )

    async def inbox_quarantined(self, limit: int = 100) -> list[InboxEvent]:
        rows = await self._fetch(
            self.dialect.sql(
                f"SELECT {INBOX.column_list} FROM inbox WHERE status = 'quarantined'"
                " ORDER BY id LIMIT ?"
            ),
            (limit,),
        )
        return [inbox_from_row(r) for r in rows]

    async def inbox_retry(self, inbox_id: int, now: datetime) -> bool:
        changed = await self._run(
            "UPDATE inbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
            " lease_until = NULL WHERE id = ? AND status = 'quarantined'",
            self.dialect.time(now),
            inbox_id,
        )
        return changed == 1

    async def inbox_drop(self, inbox_id: int) -> bool:
        changed = await self._run(
            "DELETE FROM inbox WHERE id = ? AND status = 'quarantined'", inbox_id
        )
        return changed == 1

    async def inbox_prune(self, before: datetime) -> int:
        return await self._run(
            "DELETE FROM inbox WHERE status = 'done' AND done_at < ?", self.dialect.time(before)
        )

    # outbox
    async def outbox_put(self, messages: Sequence[OutboxMessage]) -> int:
        return await self._write_all(outbox_inserts(messages, self.dialect)) if messages else 0

    async def outbox_claim(
        self, limit: int, lease: timedelta, now: datetime, lanes: Sequence[Lane] | None = None
    ) -> list[OutboxMessage]:
        order = "CASE r.lane WHEN 'interactive' THEN 0 ELSE 1 END, r.id"
        lane_names = ", ".join(
            f"'{lane}'" for lane in lanes or _CHAT if lane in _LANES
        )  # no injection
        sql = claim_sql("outbox", "o.chat = r.chat", order, self.dialect.skip_locked).replace(
            "WHERE r.status = 'pending'", f"WHERE r.lane IN ({lane_names}) AND r.status = 'pending'"
        )
        t = self.dialect.time
        rows = await self._returning_last(
            self.dialect.sql(sql), (t(now), t(now), t(now), limit, t(now + lease))
        )
        return sorted(map(outbox_from_row, rows), key=lambda m: (m.lane != "interactive", m.id))

    async def outbox_sent(
        self,
        outbox_id: int,
        platform_message_id: str | None,
        at: datetime,
        *,
        linger: bool = False,  # nothing to group with here: written at once
    ) -> None:
        await self._run(
            "UPDATE outbox SET status = 'sent', sent_at = ?, platform_message_id = ?,"
            " lease_until = NULL WHERE id = ?",
            self.dialect.time(at),
            platform_message_id,
            outbox_id,
        )

    def flush(self) -> None:
        """Nothing lingers here (writes are not grouped)."""

    async def outbox_retry(self, outbox_id: int, at: datetime, error: str) -> None:
        await self._run(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, lease_until = NULL"
            " WHERE id = ? AND status = 'pending'",
            self.dialect.time(at),
            error,
            outbox_id,
        )

    async def outbox_dead(self, outbox_id: int, error: str) -> None:
        await self._run(
            "UPDATE outbox SET status = 'dead', last_error = ?, lease_until = NULL WHERE id = ?",
            error,
            outbox_id,
        )

    async def outbox_recent(
        self, limit: int = 50, status: OutboxStatus | None = None, lane: Lane | None = None
    ) -> list[OutboxMessage]:
        filters = {"status": status, "lane": lane}
        given = {k: v for k, v in filters.items() if v is not None}
        where = "WHERE " + " AND ".join(f"{k} = ?" for k in given) + " " if given else ""
        rows = await self._fetch(
            self.dialect.sql(
                f"SELECT {OUTBOX.column_list} FROM outbox {where}ORDER BY id DESC LIMIT ?"
            ),
            (*given.values(), limit),
        )
        return [outbox_from_row(r) for r in rows]

    async def outbox_redeliver(
        self, outbox_id: int, now: datetime, lane: Lane | None = None
    ) -> bool:
        changed = await self._run(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
            " lease_until = NULL, sent_at = NULL WHERE id = ? AND status IN ('dead', 'sent')"
            " AND lane = coalesce(?, lane)",
            self.dialect.time(now),
            outbox_id,
            lane,
        )
        return changed == 1

    async def outbox_prune(self, before: datetime) -> int:
        return await self._run(
            "DELETE FROM outbox WHERE status = 'sent' AND sent_at < ?", self.dialect.time(before)
        )

    async def queue_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(
            ["inbox.pending", "inbox.done", "inbox.quarantined", "outbox.pending",
             "outbox.sent", "outbox.dead"], 0
        )  # fmt: skip
        rows = await self._fetch(
            "SELECT 'inbox', status, count(*) FROM inbox GROUP BY status UNION ALL"
            " SELECT 'outbox', status, count(*) FROM outbox GROUP BY status",
            (),
        )
        for queue, status, count in rows:
            counts[f"{queue}.{status}"] = int(count)
        return counts
