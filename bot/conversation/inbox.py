"""The inbox: where every platform event goes, raw, before the platform is acknowledged.

Edges (Telegram polling and webhook, Slack Socket Mode and HTTP) turn what arrived into
:class:`bot.chat.RawEvent` with pure functions and call :meth:`Inbox.accept`, which stores them
(``Storage.inbox_put``, one transaction); only when it returns do they confirm the offset,
answer 200 or ack the envelope. If it raises (storage failing: the storage layer logs the real
error once and ``/healthz`` turns 503), they do not acknowledge and the platform delivers the
event again.

:meth:`Inbox.run` is the worker: it claims stored events (one customer's events one at a time,
in order; several workers share the table on PostgreSQL), hands each to its platform's
processor (``processors[platform]``: parse, then ``Runtime.process``), and marks it done: in
the transaction of the answer or session it commits (:mod:`bot.conversation.ticket`), else
with a write of its own. A
processor that raises gets the event retried after a backoff; after ``attempts`` tries it is
quarantined: logged once (one line: event id, error class and message, never the customer's
text), counted in ``surveybot_inbox_quarantined_total``, listed by ``surveybot inbox``, and
no longer holds up anyone. Handled events are deleted after ``inbox.retention``.
The worker is woken at once by ``accept`` and polls for the rest
(other workers' events, leases left by a crashed process, retries that came due).

**Handled first, stored with its answer** (where one process owns the inbox: SQLite). An event
whose customer has nothing else waiting (no earlier event of theirs in hand, being stored or
pending in the table) is handed to its processor at once, before anything is written: the
commit that answers it stores it, done, in the same transaction (:mod:`bot.conversation.ticket`
carries the event itself), so one customer's step costs no write of its own. ``accept`` still
returns only once every event is stored: answered (stored with its commit), handled without a
commit (stored done now), failed (stored for a retry, as if claimed once), or still being
handled after ``inbox.handle_first`` seconds (stored leased to its handling, which goes on and
marks it done; the edge acknowledges meanwhile). A crash before that acknowledges nothing: the
platform delivers the event again, and a second handling records nothing twice (the event id,
the button's question, the trigger's idempotency key). Events of a customer with anything
waiting are stored first and claimed in order, as above.

Without storage (``Inbox(None)``) nothing is durable: ``accept`` starts handling each event at
once, in a task of its own (one key's events still in order), and returns without waiting — the
"no inbox" side of the benchmark that measures what the inbox costs (bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics
from bot.chat import RawEvent
from bot.conversation.config import InboxConfig
from bot.conversation.first import FirstHand, describe, report_failure, retry_at
from bot.conversation.ticket import Ticket, handling
from bot.conversation.worker import ClaimLoop
from storage.base import InboxEvent, Storage, utcnow

log = logging.getLogger(__name__)
Process = Callable[[RawEvent], Awaitable[None]]
PRUNE_EVERY = timedelta(hours=1)  # how often handled events past retention are deleted


async def _nothing() -> list[InboxEvent]:
    return []


@dataclass
class Inbox:
    storage: Storage | None = None
    config: InboxConfig = field(default_factory=InboxConfig)
    concurrency: int = 32  # events handled at once by this process
    poll: float = 1.0  # seconds between looks at the table when nothing woke the worker
    clock: Callable[[], datetime] = utcnow
    processors: dict[str, Process] = field(default_factory=dict)
    _chains: dict[str, asyncio.Future[None]] = field(default_factory=dict, repr=False)
    _direct: set[asyncio.Task[None]] = field(default_factory=set, repr=False)  # without storage
    _loop: ClaimLoop[InboxEvent] = field(init=False, repr=False)
    _pruned: datetime | None = field(default=None, repr=False)
    _first: FirstHand | None = field(default=None, repr=False)  # the fast path (with storage)

    def __post_init__(self) -> None:
        self._loop = ClaimLoop("inbox", self._claim, self._handle, self.concurrency, self.poll)
        if self.storage is not None:
            self._first = FirstHand(self.storage, self.config, self._process, self.clock,
                                    self._loop.wake)  # fmt: skip

    @property
    def busy(self) -> bool:
        """Events accepted here are still waiting or being handled (False = idle)."""
        late = self._first is not None and self._first.busy
        return self._loop.busy or bool(self._direct) or late

    @property
    def handles_first(self) -> bool:
        """Events of customers with nothing waiting are handled before they are stored."""
        return self._first is not None and self._first.on

    async def accept(self, events: Sequence[RawEvent]) -> None:
        """Take events from an edge; when this returns, the edge may acknowledge them."""
        if not events:
            return
        if self.storage is None:
            for event in events:
                task = asyncio.create_task(self._in_order(event))
                self._direct.add(task)
                task.add_done_callback(self._direct.discard)
            return
        assert self._first is not None
        first = await self._first.split(events)
        rest = [e for e in events if all(e is not f for f in first)]
        outcomes = await asyncio.gather(
            self._store(rest), *(self._first.handle(e) for e in first), return_exceptions=True
        )
        for outcome in outcomes:  # one not stored: the edge must not acknowledge
            if isinstance(outcome, BaseException):
                raise outcome

    async def _store(self, events: Sequence[RawEvent]) -> None:
        """Store events raw, for the worker to handle in order."""
        assert self.storage is not None and self._first is not None
        if not events:
            return
        now = self.clock()
        # The worker's claim goes with the insert: on SQLite both land in one group-commit
        # batch (row writes first), so the worker starts on these events without another
        # round trip; anything the claim did not get (another key's turn, no room, another
        # backend's ordering) wakes the worker as before.
        room = self._loop.room
        claim = asyncio.ensure_future(self.storage.inbox_claim(room, self.config.lease, now)
                                      if room else _nothing())  # fmt: skip
        try:
            await self.storage.inbox_put([
                InboxEvent(platform=e.platform, event_id=e.event_id, key=e.key, payload=e.body,
                           received_at=now, user_id=e.user_id)
                for e in events
            ])  # fmt: skip
        finally:
            self._first.stored(events)
            await self._hand_over(claim, events)

    async def _hand_over(
        self, claim: asyncio.Future[list[InboxEvent]], events: Sequence[RawEvent]
    ) -> None:
        try:
            claimed = await claim
        except Exception:  # storage logs its own failures; the worker claims again
            claimed = []
        self._loop.take(claimed)
        got = {(e.platform, e.event_id) for e in claimed}
        if any((e.platform, e.event_id) not in got for e in events):
            self._loop.wake()

    async def prune(self) -> int:
        """Delete events handled longer than ``retention`` ago; how many."""
        if self.storage is None:
            return 0
        return await self.storage.inbox_prune(self.clock() - self.config.retention)

    def start(self) -> None:
        """Run the worker in a task of its own (:meth:`stop` ends it)."""
        if self.storage is not None:
            self._loop.start()

    async def stop(self) -> None:
        """End the worker started by :meth:`start`, after the events it holds."""
        await self._loop.stop()
        await self._drain()

    async def run(self, stop: asyncio.Event) -> None:
        """The worker loop, until ``stop``; then waits for the events it holds."""
        if self.storage is not None:
            await self._loop.run(stop)
        else:
            await stop.wait()
        await self._drain()

    async def _drain(self) -> None:
        """Wait (up to 10 s) for the events being handled outside the worker."""
        if self._direct:
            await asyncio.wait(set(self._direct), timeout=10)
        if self._first is not None:
            await self._first.drain()

    async def _claim(self, limit: int) -> list[InboxEvent]:
        assert self.storage is not None and self._first is not None
        if not self._first.ready:  # the worker runs: events may be handled first from now on
            await self._first.prepare()
        now = self.clock()
        if self._pruned is None or now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            with contextlib.suppress(Exception):  # storage logs its own failures
                await self.prune()
        return await self.storage.inbox_claim(limit, self.config.lease, now)

    async def _handle(self, stored: InboxEvent) -> None:
        assert self.storage is not None and stored.id is not None
        # An event of this key that comes while this one is handled finds the key busy and
        # wakes the worker (Inbox.accept); unless that happens, this handler's end has no
        # successor to look for (no empty claim after every event).
        self._loop.quiet()
        event = RawEvent(platform=stored.platform, event_id=stored.event_id,
                         key=stored.key, body=stored.payload, user_id=stored.user_id)  # fmt: skip
        ticket = Ticket(stored.id)  # a commit that answers the event marks it done with it
        token = handling.set(ticket)
        try:
            await self._process(event)
        except Exception as exc:
            await self._failed(stored, exc)
            return
        finally:
            handling.reset(token)
        if ticket.done:
            return
        with contextlib.suppress(Exception):  # not marked: handled again, a duplicate
            await self.storage.inbox_done(stored.id, self.clock())

    async def _failed(self, stored: InboxEvent, exc: Exception) -> None:
        assert self.storage is not None and stored.id is not None
        error = describe(exc)
        retry = retry_at(self.config, stored.attempts, self.clock())
        report_failure(stored, stored.attempts, error, retry)
        with contextlib.suppress(Exception):  # not recorded: the lease runs out, it comes back
            await self.storage.inbox_failed(stored.id, error, retry)

    async def _process(self, event: RawEvent) -> None:
        process = self.processors.get(event.platform)
        if process is None:
            raise LookupError(f"no processor for platform {event.platform}")
        await process(event)

    async def _in_order(self, event: RawEvent) -> None:
        """Without storage: process ``event`` after the earlier events with its key; a
        failure is logged once and counted."""
        before = self._chains.get(event.key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chains[event.key] = mine
        try:
            if before is not None:
                await asyncio.shield(before)
            await self._process(event)
        except Exception as exc:
            metrics.INBOX_QUARANTINED.labels(event.platform).inc()
            log.error("inbox event %s failed: %s", event.event_id, describe(exc))
        finally:
            mine.set_result(None)
            if self._chains.get(event.key) is mine:
                del self._chains[event.key]
