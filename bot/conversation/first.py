"""The inbox's fast path: an event handled before it is stored, stored with its answer.

Only where one process owns the inbox (``Storage.one_process``: SQLite), so the events waiting
in it are known here. An event goes this way when nothing of its customer (its ordering key)
waits: no earlier event of theirs is being handled this way, being stored, or pending in the
table (:attr:`FirstHand.held` names the keys that may have pending rows; the table is asked
before such a key goes this way again). Everything else is stored first and claimed in order by
the inbox worker, as before.

:meth:`FirstHand.handle` returns once the event is stored — the edge may acknowledge then:

- answered: the commit that answered it stored it, done (the ticket carried the event);
- handled without a commit (a stale tap, an ignored message): stored done now;
- failed: stored pending with its first failure and a retry time (quarantined at once when
  ``inbox.attempts`` is 1), held by its key, retried by the worker;
- still being handled after ``inbox.handle_first`` seconds (a staff command waiting to hear
  its survey went out): stored pending and leased to this handling, which goes on and marks it
  done (or failed) when it ends; a crash meanwhile gives it to the worker after the lease.

A second write of one event never undoes done (``Storage.inbox_keep``), so a commit and a
"still handling it" write may land in either order. One thing this process cannot know: an
event ``surveybot inbox retry`` (another process) puts back in line; a later event of that
customer may then go first. A quarantined event had already let its customer move on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics
from bot.chat import RawEvent
from bot.conversation.config import InboxConfig
from bot.conversation.ticket import Ticket, handling
from storage.base import InboxEvent, Storage

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (platform, ordering key), or (platform, event id)
RECENT = 10_000  # event ids remembered to recognise a redelivery


def describe(exc: BaseException) -> str:
    """An error for the log and the quarantine list: class and first line, bounded."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def retry_at(config: InboxConfig, attempts: int, now: datetime) -> datetime | None:
    """When an event that failed its ``attempts``-th try is tried again; None: quarantine."""
    if attempts >= config.attempts:
        return None
    waits = config.backoff or (timedelta(seconds=1),)
    return now + waits[min(attempts, len(waits)) - 1]


def report_failure(event: InboxEvent, attempts: int, error: str, retry: datetime | None) -> None:
    """One log line per failure (never the customer's text); quarantines counted."""
    if retry is None:
        metrics.INBOX_QUARANTINED.labels(event.platform).inc()
        log.error("inbox event %s quarantined after %d attempts: %s", event.event_id, attempts,
                  error)  # fmt: skip
    else:
        log.debug("inbox event %s failed (attempt %d): %s", event.event_id, attempts, error)


def key_of(event: RawEvent | InboxEvent) -> Key:
    return (event.platform, event.key)


@dataclass
class FirstHand:
    storage: Storage
    config: InboxConfig
    process: Callable[[RawEvent], Awaitable[None]]
    clock: Callable[[], datetime]
    wake: Callable[[], None] = lambda: None  # the inbox worker: a held key's row was marked
    ready: bool = False  # the table's pending keys are known (:meth:`prepare`)
    held: set[Key] = field(default_factory=set)  # keys that may have pending rows
    _gates: dict[Key, asyncio.Future[None]] = field(default_factory=dict, repr=False)
    _storing: Counter[Key] = field(default_factory=Counter, repr=False)  # inserts in flight
    _deciding: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _late: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    # events handled first lately: a redelivery (Slack sends an envelope again when the ack was
    # late) is stored first instead, where the inbox drops it as a duplicate without handling
    _recent: OrderedDict[Key, None] = field(default_factory=OrderedDict, repr=False)

    @property
    def busy(self) -> bool:
        """Events are being handled first, or outlived ``handle_first``."""
        return bool(self._gates) or bool(self._late)

    @property
    def on(self) -> bool:
        return self.ready and self.config.handle_first > 0 and self.storage.one_process

    async def prepare(self) -> None:
        """Learn which keys have events waiting (a previous run's, a retry's); from now on
        events may be handled first."""
        self.held |= await self.storage.inbox_pending_keys()
        self.ready = True

    async def split(self, events: Sequence[RawEvent]) -> list[RawEvent]:
        """The events to handle first (each registered as in hand); the rest must be stored
        first, and their keys count as held until :meth:`stored` (call it either way)."""
        async with self._deciding:  # one delivery's decision at a time (webhook calls at once)
            keys = {key_of(e) for e in events}
            while busy := [self._gates[k] for k in keys if k in self._gates]:
                await asyncio.wait(busy)  # each ends within handle_first and one write
            first = await self._choose(events) if self.on else []
            chosen = {id(e) for e in first}
            for event in events:
                path = "first" if id(event) in chosen else "stored"
                metrics.INBOX_EVENTS.labels(event.platform, path).inc()
                if id(event) in chosen:
                    self._gates[key_of(event)] = asyncio.get_running_loop().create_future()
                    self._recent[(event.platform, event.event_id)] = None
                    if len(self._recent) > RECENT:
                        self._recent.popitem(last=False)
                else:
                    self._storing[key_of(event)] += 1
                    self.held.add(key_of(event))
            return first

    async def _choose(self, events: Sequence[RawEvent]) -> list[RawEvent]:
        """Events whose customer has nothing waiting: no other event in this delivery, none
        being stored, none pending in the table (asked for the keys that may have some), and
        not handled first lately (a redelivery)."""
        keys = {key_of(e) for e in events}
        asked = {k for k in keys & self.held if not self._storing[k]}
        waiting = await self.storage.inbox_pending_keys(asked) if asked else set()
        self.held -= asked - waiting
        counts = Counter(key_of(e) for e in events)
        free = {k for k, n in counts.items()
                if n == 1 and k not in self.held and not self._storing[k]}  # fmt: skip
        return [e for e in events
                if key_of(e) in free and (e.platform, e.event_id) not in self._recent]  # fmt: skip

    def stored(self, events: Sequence[RawEvent]) -> None:
        """The insert of ``events`` (from :meth:`split`'s rest) ended, stored or not."""
        for event in events:
            key = key_of(event)
            self._storing[key] -= 1
            if self._storing[key] <= 0:
                del self._storing[key]

    async def handle(self, raw: RawEvent) -> None:
        """Handle ``raw`` before storing it; return once it is stored (see the module)."""
        key = key_of(raw)
        event = InboxEvent(platform=raw.platform, event_id=raw.event_id, key=raw.key,
                           payload=raw.body, received_at=self.clock(),
                           user_id=raw.user_id)  # fmt: skip
        ticket = Ticket(event=event)
        task = asyncio.create_task(self._run(raw, ticket))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.config.handle_first)
            if task in done:
                await self._settle(event, ticket, task.result())
                return
            # still going: stored now, leased to this handling, which marks it when it ends
            # (also if storing fails now: the edge then does not acknowledge, and the mark
            # done or failed is what a redelivery finds)
            self.held.add(key)
            late = asyncio.ensure_future(self._finish_late(event, ticket, task))
            self._late.add(late)
            late.add_done_callback(self._late.discard)
            until = self.clock() + self.config.lease
            leased = event.model_copy(update={"attempts": 1, "lease_until": until})
            row = await self.storage.inbox_keep(leased)
            if row is not None and not ticket.done:
                ticket.inbox_id = row
        finally:
            gate = self._gates.pop(key, None)
            if gate is not None:
                gate.set_result(None)

    async def _run(self, raw: RawEvent, ticket: Ticket) -> BaseException | None:
        token = handling.set(ticket)
        try:
            await self.process(raw)
        except Exception as exc:
            return exc
        finally:
            handling.reset(token)
        return None

    async def _settle(self, event: InboxEvent, ticket: Ticket, error: BaseException | None) -> None:
        """Store a handling that ended: done, or failed once (raises if storage fails)."""
        if ticket.done:
            if error is not None:  # after its commit: the answer stands
                log.debug("inbox event %s: %s after its commit", event.event_id, describe(error))
            return
        now = self.clock()
        if error is None:
            if ticket.inbox_id is not None:
                await self.storage.inbox_done(ticket.inbox_id, now)
            else:
                await self.storage.inbox_keep(event.handled(now))
            return
        text = describe(error)
        retry = retry_at(self.config, 1, now)
        report_failure(event, 1, text, retry)
        self.held.add(key_of(event))
        if ticket.inbox_id is not None:
            await self.storage.inbox_failed(ticket.inbox_id, text, retry)
            return
        failed = {"attempts": 1, "last_error": text, "next_attempt_at": retry or now,
                  "status": "pending" if retry else "quarantined"}  # fmt: skip
        await self.storage.inbox_keep(event.model_copy(update=failed))

    async def _finish_late(
        self, event: InboxEvent, ticket: Ticket, task: asyncio.Task[BaseException | None]
    ) -> None:
        """A handling that outlived ``handle_first`` ended: its stored row marked (if this
        fails, the lease runs out and the worker handles the event again: harmless)."""
        error = await task
        with contextlib.suppress(Exception):  # storage logs its own failures
            await self._settle(event, ticket, error)
        self.wake()  # the customer's next event, stored meanwhile, may go now

    async def drain(self) -> None:
        """Wait (up to 10 s) for the handlings that outlived ``handle_first`` (at stop)."""
        if self._late:
            await asyncio.wait(set(self._late), timeout=10)
