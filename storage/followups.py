"""The follow-ups table (:mod:`storage.followup_records`), written once for both backends on
the primitives :class:`storage.queues.QueueMethods` documents (``_write``, ``_write_all``,
``_fetch``).

A follow-up change and the outbox rows it owes go in one transaction: the change is an
``UPDATE`` guarded by the state it changes from that also writes a fresh random token
(``change_id``), and each outbox row an ``INSERT ... SELECT`` that inserts only if the row now
carries that token. So a change that did not apply (someone else owned it first, a redelivered
press) queues nothing, even when two workers race on PostgreSQL (the loser's guard sees the
winner's token). Parameters of that ``SELECT`` are cast to their column types, which
PostgreSQL needs and SQLite ignores.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from storage.dialect import Dialect
from storage.followup_records import Followup
from storage.queues import OUTBOX_NEW, outbox_params
from storage.records import OutboxMessage
from storage.rows import as_time, json_dict, opt_time, placeholders
from storage.schema import FOLLOWUPS, OUTBOX

NEW = [c.name for c in FOLLOWUPS.columns if c.name != "id"]
INSERT = (
    f"INSERT INTO followups ({', '.join(NEW)}) VALUES ({placeholders(len(NEW))})"
    " ON CONFLICT (session_id, question_id) DO NOTHING"
)
SELECT = f"SELECT {FOLLOWUPS.column_list} FROM followups"
OWN = (
    "UPDATE followups SET owner = ?, owner_name = ?, owned_at = ?, change_id = ? WHERE id = ?"
    " AND owner IS NULL AND resolved_at IS NULL"
)
RESOLVE = (
    "UPDATE followups SET resolved_by = ?, resolved_by_name = ?, resolved_at = ?,"
    " owner_name = CASE WHEN owner IS NULL THEN ? ELSE owner_name END,"
    " owner = coalesce(owner, ?), owned_at = coalesce(owned_at, ?), change_id = ?"
    " WHERE id = ? AND resolved_at IS NULL"
)
NOTE = "UPDATE followups SET note = ?, change_id = ? WHERE id = ? AND coalesce(note, '') <> ?"


def followup_params(f: Followup, dialect: Dialect) -> tuple[Any, ...]:
    t = dialect.time
    values = f.model_dump(exclude={"id"}) | {"context": json.dumps(f.context)}
    return tuple(t(values[n]) if isinstance(values[n], datetime) else values[n] for n in NEW)


def followup_from_row(row: Sequence[Any]) -> Followup:
    data = dict(zip(FOLLOWUPS.names(), row, strict=True))
    data["context"] = json_dict(data["context"])
    data["created_at"] = as_time(data["created_at"])
    for name in ("owned_at", "resolved_at"):
        data[name] = opt_time(data[name])
    return Followup.model_validate(data)


def guarded_outbox(
    messages: Sequence[OutboxMessage], guard: str, guard_params: Sequence[Any], dialect: Dialect
) -> list[tuple[str, list[Any]]]:
    """Inserts of ``messages`` that happen only if a follow-up row matches ``guard``."""
    types = {c.name: dialect.types[c.type] for c in OUTBOX.columns}
    casts = ", ".join(f"CAST(? AS {types[n.strip()]})" for n in OUTBOX_NEW.split(","))
    sql = dialect.sql(
        f"INSERT INTO outbox ({OUTBOX_NEW}) SELECT {casts}"
        f" WHERE EXISTS (SELECT 1 FROM followups WHERE {guard})"
    )
    return [(sql, [*outbox_params(m, dialect), *guard_params]) for m in messages]


class FollowupMethods:
    """The follow-up half of the Storage protocol (:class:`FollowupStore`)."""

    dialect: ClassVar[Dialect]

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        raise NotImplementedError

    async def _write_all(self, statements: list[tuple[str, list[Any]]]) -> int:
        raise NotImplementedError

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        raise NotImplementedError

    async def _select(self, where: str, *params: Any) -> list[Followup]:
        rows = await self._fetch(self.dialect.sql(f"{SELECT} {where}"), params)
        return [followup_from_row(r) for r in rows]

    async def _change(
        self, update: str, params: Sequence[Any], outbox: Sequence[OutboxMessage]
    ) -> bool:
        """Run ``update`` (whose parameters hold ``{token}`` where the change token goes) and
        queue ``outbox`` if it applied, in one transaction."""
        token = secrets.token_hex(8)
        values = [token if p == "{token}" else p for p in params]
        statements = [(self.dialect.sql(update), values)]
        statements += guarded_outbox(outbox, "change_id = ?", (token,), self.dialect)
        return await self._write_all(statements) > 0

    async def followup_put(self, followups: Sequence[Followup]) -> int:
        sql = self.dialect.sql(INSERT)
        statements = [(sql, list(followup_params(f, self.dialect))) for f in followups]
        return await self._write_all(statements) if statements else 0

    async def followup_get(self, followup_id: int) -> Followup | None:
        found = await self._select("WHERE id = ?", followup_id)
        return found[0] if found else None

    async def followup_of(self, session_id: str, question_id: str) -> Followup | None:
        found = await self._select("WHERE session_id = ? AND question_id = ?", session_id,
                                   question_id)  # fmt: skip
        return found[0] if found else None

    async def followups_of_session(self, session_id: str) -> list[Followup]:
        return await self._select("WHERE session_id = ? ORDER BY id", session_id)

    async def followup_at(self, chat: str, message_id: str) -> Followup | None:
        found = await self._select(
            "WHERE message_id = ? AND (destination = ? OR destination LIKE ?)",
            message_id, chat, f"{chat}:%",
        )  # fmt: skip
        return found[0] if found else None

    async def followup_posted(self, followup_id: int, message_id: str) -> None:
        await self._write(
            self.dialect.sql("UPDATE followups SET message_id = ? WHERE id = ?"),
            (message_id, followup_id),
        )

    async def followup_comment(self, followup_id: int, comment: str) -> None:
        await self._write(
            self.dialect.sql("UPDATE followups SET comment = ? WHERE id = ?"),
            (comment, followup_id),
        )

    async def followup_own(
        self,
        followup_id: int,
        by: str,
        at: datetime,
        outbox: Sequence[OutboxMessage] = (),
        name: str | None = None,
    ) -> bool:
        t = self.dialect.time(at)
        return await self._change(OWN, (by, name, t, "{token}", followup_id), outbox)

    async def followup_resolve(
        self,
        followup_id: int,
        by: str,
        at: datetime,
        outbox: Sequence[OutboxMessage] = (),
        name: str | None = None,
    ) -> bool:
        t = self.dialect.time(at)
        params = (by, name, t, name, by, t, "{token}", followup_id)
        return await self._change(RESOLVE, params, outbox)

    async def followup_note(
        self, followup_id: int, note: str, outbox: Sequence[OutboxMessage] = ()
    ) -> bool:
        return await self._change(NOTE, (note, "{token}", followup_id, note), outbox)

    async def followups(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        unresolved: bool = False,
        limit: int | None = None,
    ) -> list[Followup]:
        t = self.dialect.time
        where = ["created_at >= ?" if since else "", "created_at < ?" if until else "",
                 "resolved_at IS NULL" if unresolved else ""]  # fmt: skip
        params: list[Any] = [t(v) for v in (since, until) if v is not None]
        clauses = " AND ".join(w for w in where if w)
        sql = (f"WHERE {clauses} " if clauses else "") + "ORDER BY created_at, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return await self._select(sql, *params)
