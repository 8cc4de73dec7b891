"""Group commit for the SQLite backend.

aiosqlite runs every call on one database thread, and a round trip to that thread costs far
more than the SQL itself. Hot-path writes are therefore queued and written together, in one
``BEGIN IMMEDIATE ... COMMIT``:

- single statements (mark a prompt sent, claim an event, store a session) are sent to the
  thread back to back, with no await between them, and each gets its own rowcount;
- row writes (:class:`SetWrite`: store inbox events, mark events done, messages sent) are
  applied as sets: one multi-row statement per kind for all the batch's requests of that kind;
- answer commits are applied as sets, whatever their number: one multi-row ``INSERT OR IGNORE
  ... RETURNING`` for the event ids, one for the answers, one ``UPDATE ... FROM (VALUES ...)
  RETURNING`` for the sessions (guarded by their expected version), and deletes that undo the
  event and answer rows of any commit whose session update did not apply — all before the
  COMMIT, so each answer commit is all-or-nothing, exactly as if it ran alone.

If a batch fails as a whole, each request is retried alone so that one bad request cannot fail
the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from storage.base import CommitResult
from storage.health import HealthTracker
from storage.queues import OUTBOX_NEW, chunks, insert_sql
from storage.rows import ANSWER_COLUMNS

log = logging.getLogger(__name__)

Statement = tuple[str, Sequence[Any]]


@dataclass(frozen=True)
class AnswerCommit:
    """One answer commit: the event id, the answer row and the session's new state."""

    session_id: str
    expected_version: int
    new_version: int
    state_json: str
    status: str
    now: str
    answer: tuple[Any, ...] | None  # the ANSWER_COLUMNS values, session_id first
    event_id: str | None
    inbox_id: int | None = None  # marked done if the commit applies
    outbox: tuple[tuple[Any, ...], ...] = ()  # OUTBOX_NEW values, inserted if it applies


@dataclass(frozen=True)
class SetStatement:
    """A statement run once per batch for the rows of every request naming it: ``head``, one
    ``(?, ...)`` of ``width`` values per row, ``tail``. With ``key_width`` the tail RETURNs the
    first ``key_width`` values of each row it wrote, and each request learns how many of its
    rows were written (a row whose key an earlier row in the batch took counts for that one)."""

    head: str
    width: int
    tail: str
    key_width: int = 0


@dataclass(frozen=True)
class SetWrite:
    statement: SetStatement
    rows: tuple[tuple[Any, ...], ...]


Work = Statement | AnswerCommit | SetWrite


@dataclass
class _Request:
    work: Work
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    def __init__(
        self,
        db: aiosqlite.Connection,
        lock: asyncio.Lock,
        health: HealthTracker,
        max_batch: int = 200,
    ) -> None:
        self.db = db
        self.lock = lock
        self.health = health
        self.max_batch = max_batch  # 200 answers x 11 values stays far below SQLite's limit
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # counters for benchmarks and tests
        self.requests = 0

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement in the next batch; its rowcount once committed."""
        return int(await self._submit((sql, params)))

    async def write_rows(self, statement: SetStatement, rows: Sequence[tuple[Any, ...]]) -> int:
        """Write rows with ``statement`` in the next batch; how many were written (with a
        ``key_width``), else 0."""
        return int(await self._submit(SetWrite(statement, tuple(rows))))

    async def commit_answer(self, commit: AnswerCommit) -> CommitResult:
        result: CommitResult = await self._submit(commit)
        return result

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _submit(self, work: Work) -> Any:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sqlite-group-commit")
        request = _Request(work)
        await self._queue.put(request)
        return await request.done

    async def _run(self) -> None:
        deferred: list[_Request] = []
        while True:
            batch = deferred or [await self._queue.get()]
            await asyncio.sleep(0)  # let requests that are ready this loop turn join the batch
            while not self._queue.empty() and len(batch) < self.max_batch:
                batch.append(self._queue.get_nowait())
            batch, deferred = _without_collisions(batch)
            async with self.lock:
                self.batches += 1
                self.requests += len(batch)
                try:
                    results = await self._write(batch)
                except Exception as exc:  # a whole-batch failure: isolate the culprit
                    if len(batch) == 1:
                        _fail(batch[0], exc)
                        continue
                    if not is_database_failure(exc):  # those are logged once, by health
                        log.warning("group commit of %d requests failed (%s); retrying one"
                                    " by one", len(batch), exc)  # fmt: skip
                    for request in batch:
                        try:
                            (result,) = await self._write([request])
                        except Exception as single:
                            _fail(request, single)
                        else:
                            _succeed(request, result)
                    continue
            for request, result in zip(batch, results, strict=True):
                _succeed(request, result)

    async def _write(self, batch: list[_Request]) -> list[Any]:
        db = self.db
        statements = [r.work for r in batch if isinstance(r.work, tuple)]
        commits = [r.work for r in batch if isinstance(r.work, AnswerCommit)]
        sets = [r.work for r in batch if isinstance(r.work, SetWrite)]
        try:
            outcomes = await asyncio.gather(
                db.execute("BEGIN IMMEDIATE"),
                *(db.execute(sql, tuple(params)) for sql, params in statements),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            counts = iter([c.rowcount for c in outcomes[1:]])  # type: ignore[union-attr]
            written = iter(await _apply_sets(db, sets) if sets else [])
            verdicts = iter(await _apply_commits(db, commits) if commits else [])
            await db.execute("COMMIT")
        except BaseException as exc:
            await rollback(db)
            if is_database_failure(exc):
                self.health.failed(exc)
            raise
        self.health.ok()
        return [
            next(verdicts) if isinstance(r.work, AnswerCommit)
            else next(written) if isinstance(r.work, SetWrite)
            else next(counts)
            for r in batch
        ]  # fmt: skip


def is_database_failure(exc: BaseException) -> bool:
    """An error of the database itself (full disk, read-only file, I/O), not a refusal the
    contract expects (a key already taken)."""
    return isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError)


async def rollback(db: aiosqlite.Connection) -> None:
    """Undo the open transaction, if there still is one: SQLite rolls back by itself after
    some errors (a full disk during COMMIT, for one), and a second ROLLBACK would fail with
    "no transaction is active" and hide the real error. A rollback that fails is logged;
    the caller raises the error that caused it."""
    if not db.in_transaction:
        return
    try:
        await db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("rollback failed (%s); the transaction's own error follows", exc)


def _without_collisions(batch: list[_Request]) -> tuple[list[_Request], list[_Request]]:
    """Two commits for one session (or one event) go in different batches, so the set-based
    statements can tell every commit's rows apart."""
    seen: set[str] = set()
    now, later = [], []
    for request in batch:
        work = request.work
        keys = (
            {f"s:{work.session_id}"} | ({f"e:{work.event_id}"} if work.event_id else set())
            if isinstance(work, AnswerCommit)
            else set()
        )
        if keys & seen:
            later.append(request)
        else:
            seen |= keys
            now.append(request)
    return now, later


async def _apply_sets(db: aiosqlite.Connection, sets: list[SetWrite]) -> list[int]:
    """Run each set statement once (in parts under SQLite's 32766 values); rows written per
    request, in order."""
    written = [0] * len(sets)
    members: dict[SetStatement, list[int]] = {}
    for index, work in enumerate(sets):
        members.setdefault(work.statement, []).append(index)
    for statement, indexes in members.items():
        rows = [(i, row) for i in indexes for row in sets[i].rows]
        per = max(1, 30000 // statement.width)
        keys: Counter[tuple[Any, ...]] = Counter()
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            sql = statement.head + _values(len(part), statement.width) + statement.tail
            values = [v for _, row in part for v in row]
            if statement.key_width:
                keys.update(tuple(r) for r in await db.execute_fetchall(sql, values))
            else:
                await db.execute(sql, values)
        for i, row in rows:
            key = row[: statement.key_width]
            if statement.key_width and keys[key] > 0:
                keys[key] -= 1
                written[i] += 1
    return written


def _values(rows: int, width: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return ", ".join([one] * rows)


async def _apply_commits(db: aiosqlite.Connection, commits: list[AnswerCommit]) -> list[str]:
    """Apply answer commits as sets; a verdict per commit, in order."""
    events = [c for c in commits if c.event_id is not None]
    fresh_events: set[str] = set()
    if events:
        rows = await db.execute_fetchall(
            "INSERT OR IGNORE INTO processed_events (event_id, processed_at) VALUES "
            + _values(len(events), 2)
            + " RETURNING event_id",
            [v for c in events for v in (c.event_id, c.now)],
        )
        fresh_events = {str(r[0]) for r in rows}
    live = [c for c in commits if c.event_id is None or c.event_id in fresh_events]
    with_answer = [c for c in live if c.answer is not None]
    fresh_answers: set[str] = set()
    if with_answer:
        rows = await db.execute_fetchall(
            f"INSERT OR IGNORE INTO answers ({ANSWER_COLUMNS}) VALUES "
            + _values(len(with_answer), 11)
            + " RETURNING session_id",
            [v for c in with_answer for v in c.answer or ()],
        )
        fresh_answers = {str(r[0]) for r in rows}
    ready = [c for c in live if c.answer is None or c.session_id in fresh_answers]
    updated: set[str] = set()
    if ready:
        rows = await db.execute_fetchall(
            "WITH v(id, expected, new, state, status, now) AS (VALUES "
            + _values(len(ready), 6)
            + ") UPDATE sessions SET state = v.state, status = v.status,"
            " version = v.new, updated_at = v.now,"
            " completed_at = CASE WHEN v.status = 'completed' THEN v.now"
            " ELSE sessions.completed_at END"
            " FROM v WHERE sessions.id = v.id AND sessions.version = v.expected"
            " RETURNING sessions.id",
            [v for c in ready for v in (c.session_id, c.expected_version, c.new_version,
                                        c.state_json, c.status, c.now)],
        )  # fmt: skip
        updated = {str(r[0]) for r in rows}
    # what applied commits bring along: their inbox event is done, their messages owed
    applied = [c for c in commits if c.session_id in updated]
    handled = [c for c in applied if c.inbox_id is not None]
    if handled:
        await db.execute(
            "WITH v(id, now) AS (VALUES " + _values(len(handled), 2) + ") UPDATE inbox SET"
            " status = 'done', done_at = v.now, lease_until = NULL FROM v WHERE inbox.id = v.id",
            [v for c in handled for v in (c.inbox_id, c.now)],
        )
    for part in chunks([row for c in applied for row in c.outbox]):
        await db.execute(
            insert_sql("outbox", OUTBOX_NEW, len(part)), [v for row in part for v in row]
        )
    # undo what the commits that did not go all the way wrote
    stale = [c for c in commits if c.session_id not in updated]
    undo_events = [c.event_id for c in stale if c.event_id in fresh_events]
    undo_answers = [c for c in stale if c.answer is not None and c.session_id in fresh_answers]
    if undo_events:
        await db.execute(
            f"DELETE FROM processed_events WHERE event_id IN ({', '.join('?' * len(undo_events))})",
            undo_events,
        )
    for c in undo_answers:
        assert c.answer is not None
        await db.execute(
            "DELETE FROM answers WHERE session_id = ? AND question_id = ?",
            (c.session_id, c.answer[1]),
        )
    # an answer already there: a conflict when the session moved on, else a duplicate
    answered = [c for c in live if c.answer is not None and c.session_id not in fresh_answers]
    versions: dict[str, int] = {}
    if answered:
        rows = await db.execute_fetchall(
            f"SELECT id, version FROM sessions WHERE id IN ({', '.join('?' * len(answered))})",
            [c.session_id for c in answered],
        )
        versions = {str(r[0]): int(r[1]) for r in rows}
    verdicts = []
    for c in commits:
        if c.session_id in updated:
            verdicts.append("ok")
        elif c.event_id is not None and c.event_id not in fresh_events:
            verdicts.append("duplicate")  # the event was handled before
        elif c in answered and versions.get(c.session_id) == c.expected_version:
            verdicts.append("duplicate")  # the question has its answer already
        else:
            verdicts.append("conflict")  # another writer moved the session first
    return verdicts


def _succeed(request: _Request, result: Any) -> None:
    if not request.done.done():
        request.done.set_result(result)


def _fail(request: _Request, exc: BaseException) -> None:
    if not request.done.done():
        request.done.set_exception(exc)
