"""Group commit for the SQLite backend.

aiosqlite runs every call on one database thread, and a round trip to that thread costs far
more than the SQL itself (0.05 ms idle, 0.3 ms and more on a busy machine). Hot-path writes are
therefore queued and written together, in one ``BEGIN IMMEDIATE ... COMMIT`` that runs on the
database thread as one plain sqlite3 function: one round trip per batch, whatever it holds, and
no other call on the connection can run between its statements:

- single statements (mark a prompt sent, store a session) each get their own rowcount;
  :class:`Fetch` statements (claim events or messages, add a job) their ``RETURNING`` rows;
- row writes (:class:`SetWrite`: store inbox events, mark events done, messages sent) are
  applied as sets: one multi-row statement per kind for all the batch's requests of that kind;
- answer commits are applied as sets, whatever their number, each all-or-nothing exactly as
  if it ran alone (:mod:`storage.sqlite.sets`).

If a batch fails as a whole, each request is retried alone so that one bad request cannot fail
the others.

A write nobody waits for (a delivered message marked sent, when nothing else of its chat is
owed) may **linger**: it starts no batch of its own but rides with the next one (every batch
takes what lingers), or is written after ``linger`` seconds if no other write came. One
customer answering at a time then costs a round trip less per message: the mark goes with the
inbox insert of the customer's next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosqlite

from storage.base import CommitResult
from storage.health import HealthTracker
from storage.sqlite.sets import AnswerCommit, SetStatement, SetWrite, apply_commits, apply_sets

__all__ = ["AnswerCommit", "Conditional", "Fetch", "GroupCommitter", "SetStatement", "SetWrite"]
log = logging.getLogger(__name__)

Statement = tuple[str, Sequence[Any]]
T = TypeVar("T")
# runs a function with the sqlite3 connection on the database thread (SQLiteConnection.run)
RunOnThread = Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]


@dataclass(frozen=True)
class Fetch:
    """One writing statement whose ``RETURNING`` rows are wanted (a claim, a new job's id);
    ``last``: after the batch's answer commits (an outbox claim sees what they owe)."""

    sql: str
    params: Sequence[Any]
    last: bool = False


@dataclass(frozen=True)
class Conditional:
    """Statements that belong together (a new session, its first question and its jobs):
    ``first``; only if it touched a row, ``then``; ``always`` either way. Its result: the rows
    ``first`` touched."""

    first: Statement
    then: Sequence[Statement] = ()
    always: Sequence[Statement] = ()


Work = Statement | Fetch | Conditional | AnswerCommit | SetWrite


@dataclass
class _Request:
    work: Work
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    def __init__(
        self,
        run: RunOnThread[tuple[list[Any], bool]],
        lock: asyncio.Lock,
        health: HealthTracker,
        max_batch: int = 200,
        linger: float = 0.05,
    ) -> None:
        self.run = run
        self.lock = lock
        self.health = health
        self.max_batch = max_batch  # 200 answers x 11 values stays far below SQLite's limit
        self.linger = linger  # the longest a lingering write waits for company (seconds)
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._lingering: list[_Request] = []
        self._linger_timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # counters for benchmarks and tests
        self.requests = 0

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement in the next batch; its rowcount once committed."""
        return int(await self._submit((sql, params)))

    async def fetch(
        self, sql: str, params: Sequence[Any], *, last: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run one writing statement in the next batch (``last``: after its answer commits);
        its ``RETURNING`` rows once committed."""
        rows: list[tuple[Any, ...]] = await self._submit(Fetch(sql, params, last))
        return rows

    async def conditional(self, work: Conditional) -> int:
        """Run ``work`` in the next batch; the rows its first statement touched."""
        return int(await self._submit(work))

    async def write_rows(
        self, statement: SetStatement, rows: Sequence[tuple[Any, ...]], *, linger: bool = False
    ) -> int:
        """Write rows with ``statement`` in the next batch; how many were written (with a
        ``key_width``), else 0. ``linger``: in the next batch anyone else starts, or after
        :attr:`linger` seconds."""
        work = SetWrite(statement, tuple(rows))
        return int(await (self._linger(work) if linger else self._submit(work)))

    async def commit_answer(self, commit: AnswerCommit) -> CommitResult:
        result: CommitResult = await self._submit(commit)
        return result

    async def close(self) -> None:
        self.release()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sqlite-group-commit")

    async def _submit(self, work: Work) -> Any:
        self._running()
        request = _Request(work)
        await self._queue.put(request)
        return await request.done

    async def _linger(self, work: Work) -> Any:
        self._running()
        request = _Request(work)
        self._lingering.append(request)
        if self._linger_timer is None:
            self._linger_timer = asyncio.get_running_loop().call_later(self.linger, self.release)
        return await request.done

    def release(self) -> None:
        """The lingering writes go in a batch of their own (nobody came, or now is wanted)."""
        self._linger_timer = None
        for request in self._lingering:
            self._queue.put_nowait(request)
        self._lingering = []

    def _take_lingering(self, batch: list[_Request]) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        batch.extend(self._lingering)
        self._lingering = []

    async def _run(self) -> None:
        deferred: list[_Request] = []
        while True:
            batch = deferred or [await self._queue.get()]
            await asyncio.sleep(0)  # let requests that are ready this loop turn join the batch
            while not self._queue.empty() and len(batch) < self.max_batch:
                batch.append(self._queue.get_nowait())
            self._take_lingering(batch)  # marks nobody waits for ride along
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
        works = [r.work for r in batch]
        try:
            results, wrote = await self.run(lambda conn: _write_batch(conn, works))
        except BaseException as exc:
            if is_database_failure(exc):
                self.health.failed(exc)
            raise
        if wrote:  # a batch that changed no row (an empty claim) proves nothing about the disk
            self.health.ok()
        return results


def _write_batch(conn: sqlite3.Connection, works: list[Work]) -> tuple[list[Any], bool]:
    """The whole batch in one transaction, on the database thread: a result per work, and
    whether it changed any row."""
    changes = conn.total_changes
    try:
        conn.execute("BEGIN IMMEDIATE")
        # row writes first, so that a claim in the same batch sees the events just stored and
        # the heads that events marked done just freed
        sets = [w for w in works if isinstance(w, SetWrite)]
        written = iter(apply_sets(conn, sets) if sets else [])
        singles = iter([_single(conn, w) for w in works if _is_single(w)])
        commits = [w for w in works if isinstance(w, AnswerCommit)]
        verdicts = iter(apply_commits(conn, commits) if commits else [])
        # then the claims that want what those commits owe (the outbox rows of the answers)
        lasts = iter([conn.execute(w.sql, tuple(w.params)).fetchall()
                      for w in works if isinstance(w, Fetch) and w.last])  # fmt: skip
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return [
        next(verdicts) if isinstance(w, AnswerCommit)
        else next(written) if isinstance(w, SetWrite)
        else next(lasts) if isinstance(w, Fetch) and w.last
        else next(singles)
        for w in works
    ], conn.total_changes != changes  # fmt: skip


def _is_single(work: Work) -> bool:
    """Run with the single statements, in order (a claim marked ``last`` runs after the
    answer commits)."""
    return isinstance(work, (tuple, Conditional)) or (isinstance(work, Fetch) and not work.last)


def _single(conn: sqlite3.Connection, work: Work) -> Any:
    if isinstance(work, Fetch):
        return conn.execute(work.sql, tuple(work.params)).fetchall()
    if isinstance(work, Conditional):
        return _conditional(conn, work)
    assert isinstance(work, tuple)
    return conn.execute(work[0], tuple(work[1])).rowcount


def _conditional(conn: sqlite3.Connection, work: Conditional) -> int:
    touched: int = conn.execute(work.first[0], tuple(work.first[1])).rowcount
    for sql, params in (*(work.then if touched else ()), *work.always):
        conn.execute(sql, tuple(params))
    return touched


def is_database_failure(exc: BaseException) -> bool:
    """An error of the database itself (full disk, read-only file, I/O), not a refusal the
    contract expects (a key already taken)."""
    return isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError)


def _rollback(conn: sqlite3.Connection) -> None:
    """:func:`rollback` on the database thread."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("rollback failed (%s); the transaction's own error follows", exc)


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


def _succeed(request: _Request, result: Any) -> None:
    if not request.done.done():
        request.done.set_result(result)


def _fail(request: _Request, exc: BaseException) -> None:
    if not request.done.done():
        request.done.set_exception(exc)
