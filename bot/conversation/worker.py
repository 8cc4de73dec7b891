"""The loop the inbox worker and the outbox sender share: claim rows from storage (leased, so a
crashed process's rows come back), handle each in a task of its own, up to ``concurrency`` at
once; woken at once by :meth:`ClaimLoop.wake` (an edge stored an event, a commit owed a
message), else it looks again every ``poll`` seconds (other workers' rows, expired leases,
retries that came due). A claim that got fewer rows than it asked for is not followed by another
at once: whatever came in meanwhile woke the loop (an empty claim is a write transaction too)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ClaimLoop(Generic[T]):
    name: str
    claim: Callable[[int], Awaitable[list[T]]]  # up to N rows, leased to this process
    handle: Callable[[T], Coroutine[Any, Any, None]]  # never raises
    concurrency: int = 32
    poll: float = 1.0
    # whether the last claim was cut short by a room of the caller's own (a lane's), not the
    # loop's: rows may then be waiting although the claim got fewer than the loop had room for
    cut: Callable[[], bool] = lambda: False
    _wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _unseen: bool = field(default=False, repr=False)  # woken since the last empty claim
    _more: bool = field(default=False, repr=False)  # the last claim filled its room: maybe more
    _wakes: int = field(default=0, repr=False)
    _worker: asyncio.Task[None] | None = field(default=None, repr=False)
    # handlers whose successor rows a claim beside their last write already looked for
    _covered: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)
    # handlers that know of nothing waiting for their row, with the wake count they saw
    _quiet: dict[asyncio.Task[Any], int] = field(default_factory=dict, repr=False)
    _running: bool = field(default=False, repr=False)  # run() is looping
    _stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def busy(self) -> bool:
        """Rows this process knows of are waiting or being handled (False = idle)."""
        return bool(self._tasks) or self._unseen

    @property
    def looked(self) -> bool:
        """Every wake so far was followed by a claim that saw what there was."""
        return not self._unseen

    @property
    def all_claimed(self) -> bool:
        """The last claim got fewer rows than it had room for: nothing due was left behind."""
        return not self._more

    @property
    def room(self) -> int:
        """How many more rows this loop would handle at once now."""
        return max(0, self.concurrency - len(self._tasks))

    @property
    def stopping(self) -> bool:
        """The loop was told to stop (its rows are being finished)."""
        return self._stop.is_set()

    def take(self, rows: list[T]) -> None:
        """Handle rows claimed (leased to this process) by someone else, as if claimed here."""
        for row in rows:
            task = asyncio.create_task(self.handle(row))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def claim_beside(self, *, handler: bool = True) -> asyncio.Future[list[T]] | None:
        """Claim now, beside a write the caller is about to submit and await: on SQLite both
        land in one group-commit batch (or the claim in a later one), after that write, so
        the rows it frees (the next message of a chat whose message was just marked sent) or
        owes (what an answer commit owes) are claimed without another round trip. Await what
        this returns after the write: the rows it got, handled as if the loop had claimed
        them. ``handler``: the caller is one of this loop's handlers and its write was
        submitted before it first suspends; when the claim then saw everything there was,
        the handler's end wakes nobody (that would be an empty claim, a write transaction of
        its own)."""
        room = self.room
        if room <= 0 or not self._running or self.stopping:
            return None
        wakes, task = self._wakes, asyncio.current_task() if handler else None

        async def claim() -> list[T]:
            try:
                rows = await self.claim(room)
            except Exception as exc:  # storage logs its own failures; the loop claims again
                log.debug("%s: claim beside failed: %r", self.name, exc)
                return []
            self._more = len(rows) >= room or self.cut()
            self.take(rows)
            if not self._more and wakes == self._wakes and task is not None:
                self._covered.add(task)
            return rows

        return asyncio.ensure_future(claim())

    def uncover(self) -> None:
        """The calling handler's write beside which it claimed failed: what that claim saw
        proves nothing, so its end wakes the loop after all."""
        task = asyncio.current_task()
        if task is not None:
            self._covered.discard(task)

    def quiet(self) -> None:
        """The calling handler knows of no row that waits for its own (nothing else is owed
        to its chat): its end wakes nobody, unless the loop is woken before it ends or the
        last claim filled its room (more rows may wait for room)."""
        task = asyncio.current_task()
        if task is not None:
            self._quiet[task] = self._wakes

    def wake(self) -> None:
        self._wakes += 1
        self._unseen = True
        self._wake.set()

    def start(self) -> None:
        self._stop = asyncio.Event()
        self._worker = asyncio.create_task(self.run(self._stop), name=self.name)

    async def stop(self) -> None:
        if self._worker is not None:
            self._stop.set()
            await self._worker
            self._worker = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; then waits (up to 10 s) for the rows it holds."""
        self._stop = stop
        stopping = asyncio.ensure_future(stop.wait())
        self._running = True
        try:
            while not stop.is_set():
                self._wake.clear()
                if await self._claim():  # a full claim: there may be more right now
                    continue
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({woken, stopping}, timeout=self.poll,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                woken.cancel()
        finally:
            self._running = False
            stopping.cancel()
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=10)

    async def _claim(self) -> bool:
        """Claim and start what there is room for; True when the claim filled the room."""
        room = self.concurrency - len(self._tasks)
        if room <= 0:
            return False
        wakes = self._wakes
        try:
            rows = await self.claim(room)
        except Exception as exc:  # storage logs its own failures once; look again soon
            log.debug("%s: claim failed: %r", self.name, exc)
            await asyncio.sleep(self.poll)
            return False
        self._more = len(rows) >= room or self.cut()
        if not self._more and wakes == self._wakes:  # nothing known left to claim
            self._unseen = False
        self.take(rows)
        return len(rows) >= room

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task in self._covered:  # a claim beside its last write looked already
            self._covered.discard(task)
            return
        if self._quiet.pop(task, None) == self._wakes and not self._more:  # nothing waits
            return
        self.wake()  # the next row of its key (or chat) may be claimed now
