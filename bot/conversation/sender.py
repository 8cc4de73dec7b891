"""The sender: delivers the outbox, the messages owed to customers.

The runtime commits what it owes (the edit of the tapped message, the next question, the
thanks) as outbox rows in the same transaction as the answer that makes them owed, then wakes
the sender; after a crash the rows are still there and any process's sender delivers them (at
least once: a repeated question is harmless, its buttons name their question). Rows are
claimed per stream in order (one in flight per stream: a chat's new messages, and beside them
the edits of its messages, ``OutboxMessage.stream``), interactive lane before bulk.

Every message goes out under its platform's :class:`~bot.conversation.budget.Budget` (the
platform's limits; interactive before bulk, bulk never starved). The sender holds up to
``concurrency`` interactive rows and, in a room of their own, up to :meth:`Sender.bulk_cap`
bulk rows — only as many as the budget sends soon, so claimed rows never sit out their lease —
so customers waiting for the budget never take the places bulk needs for its share, nor bulk
theirs. A 429 pauses the chat it concerns (or the platform) in the budget and
the row is sent again at exactly the moment the platform named.

What each row's body is: :mod:`bot.conversation.owed`. A permanent delivery
error (blocked bot, unknown chat) makes the row dead with the reason; a temporary one is
retried after a backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from bot import metrics
from bot.chat import Adapter, DeliveryError, Inbound, Prompt, Settled
from bot.conversation.alert_delivery import deliver_alert
from bot.conversation.alerts import KINDS as ALERT_KINDS
from bot.conversation.budget import BUDGETED, Budget, Lane
from bot.conversation.worker import ClaimLoop
from storage.base import Lane as StorageLane
from storage.base import OutboxMessage, Storage, utcnow

log = logging.getLogger(__name__)
W = TypeVar("W")
BACKOFF = (1.0, 5.0, 30.0, 120.0, 600.0)  # seconds before retries 1, 2, ...
# kinds that end what an event owes (a settled tap and a hint are followed by more)
LAST_OWED = frozenset({"question", "thanks", "reminder"})
MAX_ATTEMPTS = 8


async def send_now(adapter: Adapter, message: OutboxMessage) -> str | None:
    """Deliver one owed message; the platform's message id, if it gave one."""
    if message.kind == "settle":
        data = json.loads(message.body)
        settled = Settled.model_validate(data["settled"])
        await adapter.settle(Inbound.model_validate(data["inbound"]), settled)
        return None
    prompt = Prompt.model_validate_json(message.body)
    sent = await adapter.send(message.address, prompt)
    return sent.message_id


@dataclass
class Sender:
    storage: Storage
    adapters: dict[str, Adapter]
    budgets: dict[str, Budget] = field(default_factory=dict)  # by platform; none = no limit
    concurrency: int = 64
    lease: timedelta = timedelta(seconds=15)  # a crashed sender's rows come back after this
    poll: float = 1.0
    clock: Callable[[], datetime] = utcnow
    # told of every delivery (the runtime records the question a session was last shown)
    on_sent: Callable[[OutboxMessage, str | None], Awaitable[None]] | None = None
    # told of every message given up (the runtime ends a survey whose first question is dead)
    on_dead: Callable[[OutboxMessage, str], Awaitable[None]] | None = None
    _loop: ClaimLoop[OutboxMessage] = field(init=False, repr=False)
    _bulk: int = field(init=False, default=0)  # bulk rows this sender holds
    _bulk_asked: int = field(init=False, default=0)  # bulk room of claims still in flight
    _interactive: int = field(init=False, default=0)  # and interactive rows
    _cut: bool = field(init=False, default=False)  # the last claim filled a lane's room
    # streams (OutboxMessage.stream) owed more while a row of theirs was out: that row's mark
    # does not linger
    _owed_streams: set[str] = field(init=False, default_factory=set, repr=False)
    _out: dict[str, int] = field(init=False, default_factory=dict, repr=False)  # stream: rows
    _timers: set[asyncio.TimerHandle] = field(init=False, default_factory=set, repr=False)

    def __post_init__(self) -> None:
        # room for ``concurrency`` interactive rows and, beside them, bulk's own
        rooms = self.concurrency + self.bulk_cap()
        self._loop = ClaimLoop("sender", self._claim, self._deliver, rooms, self.poll,
                               cut=lambda: self._cut)  # fmt: skip

    @property
    def busy(self) -> bool:
        return self._loop.busy

    @property
    def looked(self) -> bool:
        """No wake is waiting for its claim (what was owed so far has been looked for)."""
        return self._loop.looked

    def wake(self) -> None:
        """Something was owed just now: look at once. (To which chats is not known: no
        stream with a message out lets its mark linger.)"""
        self._owed_streams |= self._out.keys()
        self._loop.wake()

    async def along(self, write: Awaitable[W], owed: Sequence[OutboxMessage]) -> W:
        """Await ``write``, a commit that owes ``owed``, with a claim beside it
        (:meth:`ClaimLoop.claim_beside`, where storage groups writes): the owed rows go out
        without another round trip. The sender is woken unless that claim got a row of every
        chat owed something (the rest of such a chat follows its first row)."""
        beside = self._loop.claim_beside(handler=False) if self.storage.groups_writes else None
        try:
            return await write
        finally:
            got = {row.stream for row in await beside} if beside is not None else set()
            waiting = {m.stream for m in owed if m.lane != "webhook" and m.stream not in got}
            if waiting:  # such a stream's row in flight marks itself sent at once, then claims
                self._owed_streams |= waiting
                self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.storage.flush()  # no mark waits for company any more (none lingers from now)
        await self._loop.stop()

    async def run(self, stop: asyncio.Event) -> None:
        await self._loop.run(stop)

    # claiming ----------------------------------------------------------------------------
    def bulk_cap(self) -> int:
        """The most bulk rows to hold: what the slowest budget sends in a third of the lease at
        bulk's guaranteed share, so a held row goes out long before its lease ends."""
        horizon = self.lease.total_seconds() / 3
        cap = self.concurrency
        for budget in self.budgets.values():
            limits = budget.limits
            if limits.per_second > 0:
                share = max(limits.bulk_min_share, 0.05) * budget.bulk_per_second
                cap = min(cap, max(1, math.floor(share * horizon)))
        return cap

    def bulk_room(self) -> int:
        """How many more bulk rows to hold now."""
        return max(0, self.bulk_cap() - self._bulk)

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        """Up to ``concurrency`` interactive rows and up to :meth:`bulk_cap` bulk rows at once,
        each lane in its own room: customers waiting for the budget never take the rows bulk
        needs to use its share (nor bulk the customers')."""
        now = self.clock()
        i_room = min(limit, self.concurrency - self._interactive)
        # claims in flight count as held (a claim beside a write and the loop's own claim may
        # run at once); a lane whose room such a claim took is not cut: that claim reports it
        free = self.bulk_room()
        b_room = max(0, min(limit, free - self._bulk_asked))
        self._bulk_asked += b_room
        try:
            if i_room > 0 and b_room >= i_room:  # one claim, interactive rows first (usual)
                rows = await self.storage.outbox_claim(i_room, self.lease, now)
                bulk = sum(1 for row in rows if row.lane == "bulk")
                cut = len(rows) >= i_room  # the claim's limit was both lanes' together
            else:  # one lane near its room: each lane on its own (one batch on SQLite)
                rooms: tuple[tuple[StorageLane, int], ...] = (("interactive", i_room),
                                                              ("bulk", b_room))  # fmt: skip
                claims = [self.storage.outbox_claim(room, self.lease, now, lanes=(lane,))
                          for lane, room in rooms if room > 0]  # fmt: skip
                rows = [row for got in await asyncio.gather(*claims) for row in got]
                bulk = sum(1 for row in rows if row.lane == "bulk")
                filled = bulk >= b_room and (b_room > 0 or free == 0)
                cut = len(rows) - bulk >= i_room or filled  # a lane not or fully claimed
        finally:
            self._bulk_asked -= b_room
        self._bulk += bulk
        self._interactive += len(rows) - bulk
        self._cut = cut  # rows may be waiting for room although the loop had more
        return rows

    # delivering --------------------------------------------------------------------------
    async def _deliver(self, message: OutboxMessage) -> None:
        self._out[message.stream] = self._out.get(message.stream, 0) + 1
        try:
            await self._deliver_one(message)
        finally:
            if message.lane == "bulk":
                self._bulk -= 1
            else:
                self._interactive -= 1
            if (left := self._out.pop(message.stream) - 1) > 0:
                self._out[message.stream] = left

    async def _deliver_one(self, message: OutboxMessage) -> None:
        assert message.id is not None
        adapter = self.adapters.get(message.address.platform)
        budget = self.budgets.get(message.address.platform)
        try:
            if adapter is None:
                raise DeliveryError(f"{message.address.platform} is not connected")
            message_id = await self._budgeted(adapter, budget, message)
        except DeliveryError as exc:
            await self._failed(message, exc, exc.permanent, exc.retry_after)
            return
        except Exception as exc:  # an adapter bug: retried like a temporary failure
            log.exception("sending outbox message %s failed", message.id)
            await self._failed(message, exc, False, None)
            return
        await self._record_sent(message, message_id, self.clock())

    async def _record_sent(self, message: OutboxMessage, message_id: str | None,
                           at: datetime) -> None:  # fmt: skip
        """Record a delivery. The chat's next messages wait for this row, so while storage
        cannot write (a full disk) it is tried again every ``poll`` seconds: when writes work
        again the chat goes on at once, instead of after the lease with this message sent a
        second time. Given up when the lease runs out (then it is sent again: harmless) or
        the sender stops.

        When nothing else is known to be owed to the chat and the message ends what was owed
        (a question, the thanks: :data:`LAST_OWED`), the mark **lingers** (where storage groups
        writes): it goes with the next write anyone makes, typically the session's record of
        the question (told meanwhile) or the inbox insert of the customer's next event, so no
        round trip is spent on it alone. Should a row be owed to the chat meanwhile, the
        commit that owes it carries the mark and claims the row in the same batch."""
        assert message.id is not None
        loop = asyncio.get_running_loop()
        lease = message.lease_until - self.clock() if message.lease_until else self.lease
        deadline = loop.time() + lease.total_seconds()
        linger = (
            self.storage.groups_writes
            and message.lane == "interactive"  # bulk's marks claim the next bulk rows
            and message.kind in LAST_OWED
            and message.stream not in self._owed_streams
            and self._loop.all_claimed  # else its batch claims the rows waiting for room
            and not self._loop.stopping
        )
        self._owed_streams.discard(message.stream)
        if linger:
            self._loop.quiet()
        recorded, told = False, self.on_sent is None
        # the chat's next message, claimed in the same batch as this row's "sent"
        beside = self._loop.claim_beside() if self.storage.groups_writes and not linger else None
        while True:
            try:
                if not recorded:
                    # told while the mark lingers: the session's write takes the mark along
                    telling = self._tell(message, message_id) if linger and not told else None
                    try:
                        await self.storage.outbox_sent(message.id, message_id, at,
                                                       linger=linger)  # fmt: skip
                        recorded = True
                    finally:
                        if telling is not None:
                            told = await telling
                        if beside is not None:
                            await beside
                            beside = None
                        if not recorded:  # the claim beside proves nothing: look once it is
                            self._loop.uncover()
                if not told:
                    assert self.on_sent is not None
                    await self.on_sent(message, message_id)
                    told = True
                return
            except Exception as exc:
                if self._loop.stopping or loop.time() + self.poll >= deadline:
                    log.debug("could not mark outbox message %s sent: %r", message.id, exc)
                    return
            await asyncio.sleep(self.poll)

    def _tell(self, message: OutboxMessage, message_id: str | None) -> asyncio.Future[bool]:
        """``on_sent`` started now, beside the mark; whether it went through."""
        assert self.on_sent is not None

        async def tell() -> bool:
            assert self.on_sent is not None
            try:
                await self.on_sent(message, message_id)
            except Exception as exc:  # told again once the mark is recorded
                log.debug("recording the delivery of %s failed: %r", message.id, exc)
                return False
            return True

        return asyncio.ensure_future(tell())

    async def _budgeted(
        self, adapter: Adapter, budget: Budget | None, message: OutboxMessage
    ) -> str | None:
        """Send under the budget. A 429 pauses what it concerns; while the wait it names ends
        well inside the lease, the row waits for it here and goes again (no attempt spent)."""
        lane: Lane = "bulk" if message.lane == "bulk" else "interactive"
        patience = self.lease.total_seconds() / 2
        started = asyncio.get_running_loop().time()
        while True:
            if budget is not None:
                await budget.acquire(lane, message.chat, group=_group(message))
            token = BUDGETED.set(budget is not None)
            try:
                return await self._send(adapter, message)
            except DeliveryError as exc:
                if exc.retry_after is None or budget is None:
                    raise
                budget.pause(None if exc.scope == "platform" else message.chat, exc.retry_after)
                waited = asyncio.get_running_loop().time() - started
                if exc.permanent or waited + exc.retry_after > patience:
                    raise
                log.info("outbox message %s: %s", message.id, exc)
            finally:
                BUDGETED.reset(token)

    async def _send(self, adapter: Adapter, message: OutboxMessage) -> str | None:
        if message.kind in ALERT_KINDS:  # to staff: posted, then edited in place
            return await deliver_alert(self.storage, adapter, message)
        return await send_now(adapter, message)

    async def _failed(
        self, message: OutboxMessage, exc: Exception, permanent: bool, retry_after: float | None
    ) -> None:
        assert message.id is not None
        metrics.SEND_FAILURES.labels(message.address.platform,
                                     "permanent" if permanent else "temporary").inc()  # fmt: skip
        error = f"{type(exc).__name__}: {exc}"[:300]
        try:
            if permanent or message.attempts >= MAX_ATTEMPTS:
                log.warning("outbox message %s to %s:%s given up: %s", message.id,
                            message.address.platform, message.address.user_id, error)  # fmt: skip
                await self.storage.outbox_dead(message.id, error)
                if self.on_dead is not None:
                    await self.on_dead(message, error)
                return
            wait = retry_after or BACKOFF[min(message.attempts, len(BACKOFF)) - 1]
            await self.storage.outbox_retry(message.id, self.clock() + timedelta(seconds=wait),
                                            error)  # fmt: skip
            self._wake_after(wait)
        except Exception as store_exc:  # the lease runs out and it comes back
            log.debug("could not record outbox failure %s: %r", message.id, store_exc)

    def _wake_after(self, seconds: float) -> None:
        """Look again the moment a retry comes due (not at the next poll)."""

        def fire() -> None:
            self._timers.discard(timer)
            self.wake()

        timer = asyncio.get_running_loop().call_later(seconds, fire)
        self._timers.add(timer)


def _group(message: OutboxMessage) -> bool:
    """A Telegram group or supergroup (negative chat id): it has a per-minute limit."""
    chat_id = message.address.chat_id or ""
    return message.address.platform == "telegram" and chat_id.startswith("-")
