"""The inbox handles a customer's event before storing it, and stores it with its answer.

Real SQLite storage and the real inbox worker; the processor is a scripted platform handler that
answers the way the runtime does (a commit that carries the event, ``bot.conversation.ticket``),
commits nothing, fails, or takes its time. Each story checks what the edge may acknowledge and
when, what the table holds, and the order one customer's events are handled in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from bot.chat import RawEvent
from bot.conversation.config import InboxConfig
from bot.conversation.inbox import Inbox
from bot.conversation.ticket import carried, committed
from bot.metrics import REGISTRY
from storage import open_storage
from storage.base import InboxEvent, Storage, utcnow
from storage.sqlite.backend import SQLiteStorage


class Customers:
    """The platform handler: each event's body says what handling it takes."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.handled: list[str] = []
        self.slow = asyncio.Event()  # a "slow" event's handling ends when this is set
        self.failures = 0  # "flaky" events fail this many more times

    async def process(self, event: RawEvent) -> None:
        what = json.loads(event.body)["do"]
        if what == "slow":
            await self.slow.wait()
        if what == "fail" or (what == "flaky" and self.failures > 0):
            self.failures -= 1
            raise KeyError("date")  # a field the update lacks
        self.handled.append(event.event_id)
        if what in ("answer", "slow", "flaky"):  # the runtime's commit, carrying the event
            ref = carried()
            if await self.storage.claim_event(f"answered:{event.event_id}", utcnow(),
                                              inbox_id=ref):  # fmt: skip
                committed(ref)


def sent(n: int, do: str = "answer", customer: str = "42") -> RawEvent:
    return RawEvent(platform="telegram", event_id=f"tg:{n}", key=f"telegram:chat:{customer}",
                    body=json.dumps({"do": do}), user_id=customer)  # fmt: skip


async def rows(storage: Storage) -> dict[str, InboxEvent]:
    assert isinstance(storage, SQLiteStorage)
    found = await storage.conn.all("SELECT event_id, status, attempts, lease_until, last_error"
                                   " FROM inbox")  # fmt: skip
    return {r[0]: InboxEvent.model_validate({
        "platform": "telegram", "event_id": r[0], "key": "k", "payload": "{}",
        "received_at": utcnow(), "status": r[1], "attempts": r[2], "lease_until": r[3],
        "last_error": r[4]}) for r in found}  # fmt: skip


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait (polling) for ``condition``, at most ``seconds`` (a bound, not a measurement)."""
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)


def taken(path: str) -> float:
    """``surveybot_inbox_events_total`` of Telegram events taken by ``path``."""
    labels = {"platform": "telegram", "path": path}
    return REGISTRY.get_sample_value("surveybot_inbox_events_total", labels) or 0.0


def batches(storage: Storage) -> int:
    assert isinstance(storage, SQLiteStorage)
    return storage.conn.writer.batches


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = open_storage(f"sqlite:///{tmp_path / 'surveys.db'}")
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


@asynccontextmanager
async def running(storage: Storage, **config: object) -> AsyncIterator[tuple[Inbox, Customers]]:
    """The inbox and its worker, with the scripted customers as Telegram's processor."""
    customers = Customers(storage)
    settings = InboxConfig.model_validate({"backoff": ["1s"], "lease": "15s"} | config)
    inbox = Inbox(storage, settings, poll=0.05, processors={"telegram": customers.process})
    inbox.start()
    await until(lambda: inbox.handles_first or not settings.handle_first, 2)
    try:
        assert inbox.handles_first == bool(settings.handle_first)
        yield inbox, customers
    finally:
        await inbox.stop()


async def test_a_tap_is_answered_before_it_is_stored_and_stored_with_its_answer(
    store: Storage,
) -> None:
    async with running(store) as (inbox, customers):
        before, first = batches(store), taken("first")
        await inbox.accept([sent(1)])  # when this returns, Telegram may be told
        assert customers.handled == ["tg:1"] and taken("first") == first + 1
        assert batches(store) - before == 1  # the answer's commit, which stored the event
        assert (await rows(store))["tg:1"].status == "done"
        assert await store.inbox_pending_keys() == set()


async def test_an_event_that_commits_nothing_is_stored_done(store: Storage) -> None:
    async with running(store) as (inbox, _):
        await inbox.accept([sent(1, "stale tap")])
        row = (await rows(store))["tg:1"]
        assert (row.status, row.attempts) == ("done", 1)


async def test_a_slow_handling_is_stored_leased_and_the_customers_next_event_waits(
    store: Storage,
) -> None:
    """A staff command that waits to hear its survey went out: the edge is not kept waiting;
    the customer's next message is stored and handled after it, in order."""
    async with running(store, handle_first=0.05) as (inbox, customers):
        await inbox.accept([sent(1, "slow")])  # returned while the handling goes on
        assert customers.handled == []
        row = (await rows(store))["tg:1"]
        assert (row.status, row.attempts) == ("pending", 1) and row.lease_until is not None
        await inbox.accept([sent(2)])
        await asyncio.sleep(0.2)  # the worker looked: the key's head is leased
        assert customers.handled == [] and (await rows(store))["tg:2"].status == "pending"
        customers.slow.set()
        await until(lambda: len(customers.handled) == 2 and not inbox.busy, 3)
        assert customers.handled == ["tg:1", "tg:2"]
        assert {k: r.status for k, r in (await rows(store)).items()} == {
            "tg:1": "done", "tg:2": "done"}  # fmt: skip


async def test_a_failing_event_is_stored_for_a_retry_and_later_ones_wait_behind_it(
    store: Storage,
) -> None:
    async with running(store) as (inbox, customers):
        customers.failures = 1
        await inbox.accept([sent(1, "flaky")])
        row = (await rows(store))["tg:1"]
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "KeyError: 'date'")
        await inbox.accept([sent(2)])  # the same customer: stored, behind the failed one
        assert customers.handled == []
        await until(lambda: len(customers.handled) == 2, 4)
        assert customers.handled == ["tg:1", "tg:2"]


async def test_a_poison_event_is_quarantined_at_once_when_one_attempt_is_allowed(
    store: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(store, attempts=1) as (inbox, customers):
        await inbox.accept([sent(1, "fail"), sent(2, customer="43")])
        [poison] = await store.inbox_quarantined()
        assert (poison.event_id, poison.last_error) == ("tg:1", "KeyError: 'date'")
        assert customers.handled == ["tg:2"]  # the other customer was served
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
            "inbox event tg:1 quarantined after 1 attempts: KeyError: 'date'"]  # fmt: skip


async def test_a_customer_with_an_event_left_from_before_a_restart_is_served_in_order(
    store: Storage,
) -> None:
    """The previous process stored tg:1 and died; the worker takes it up again (it takes its
    time), and tg:2 of the same customer must not go before it, while another customer's
    event goes first as usual."""
    left = sent(1, "slow")
    await store.inbox_put([InboxEvent(platform="telegram", event_id=left.event_id, key=left.key,
                                      payload=left.body, received_at=utcnow())])  # fmt: skip
    async with running(store) as (inbox, customers):
        await inbox.accept([sent(2), sent(3, customer="43")])
        await asyncio.sleep(0.2)
        assert customers.handled == ["tg:3"]
        customers.slow.set()
        await until(lambda: len(customers.handled) == 3, 3)
        assert customers.handled == ["tg:3", "tg:1", "tg:2"]


async def test_two_events_of_one_customer_in_one_delivery_are_stored_and_handled_in_order(
    store: Storage,
) -> None:
    async with running(store) as (inbox, customers):
        before, stored = batches(store), taken("stored")
        await inbox.accept([sent(1), sent(2)])
        assert taken("stored") == stored + 2
        assert batches(store) - before >= 1  # stored first: acknowledged before handling
        await until(lambda: len(customers.handled) == 2, 3)
        assert customers.handled == ["tg:1", "tg:2"]


async def test_with_handle_first_off_every_event_is_stored_first(store: Storage) -> None:
    async with running(store, handle_first=0) as (inbox, customers):
        await inbox.accept([sent(1)])
        await asyncio.sleep(0)
        assert "tg:1" in await rows(store)  # stored before it was handled
        await until(lambda: bool(customers.handled), 3)
        assert customers.handled == ["tg:1"]


def test_handle_first_is_bounded_so_platforms_are_acknowledged_in_time() -> None:
    with pytest.raises(ValueError):
        InboxConfig(handle_first=5)  # Slack's envelopes must be acked within 3 s
    assert InboxConfig().handle_first == 0.25 and InboxConfig().lease == timedelta(seconds=15)


async def test_a_redelivered_event_is_not_handled_twice(store: Storage) -> None:
    """Slack sends an envelope again when its ack came late: the copy is a duplicate."""
    async with running(store) as (inbox, customers):
        await inbox.accept([sent(1, "stale tap")])
        await inbox.accept([sent(1, "stale tap")])
        await asyncio.sleep(0.2)  # the worker would have taken a stored copy by now
        assert customers.handled == ["tg:1"]
        assert await store.inbox_pending_keys() == set()
