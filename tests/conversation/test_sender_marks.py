"""A delivered message's "sent" mark on SQLite: it lingers when nothing waits for it, and never
holds up the chat's next message.

Anna's question went out and nothing more is owed to her: its mark waits for company and goes
with the next write anyone makes (here, Boris's event stored in the inbox) — one batch for both,
none for the mark alone. When more is owed to Anna while her question is still on its way (by a
commit through ``Sender.along``, or by anything that merely wakes the sender), the mark does not
linger: it is written at once with a claim beside it, and the next message goes out.

The group committer's linger is set to an hour and the sender's poll to an hour, so a mark that
lingered wrongly, or a next message left to the poll, would show as a test that times out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.chat import Address, Prompt, Sent
from bot.conversation.budget import Budget, Limits
from bot.conversation.sender import Sender
from storage.base import InboxEvent, OutboxMessage
from storage.sqlite.backend import SQLiteStorage
from tests.support.recording import RecordingAdapter

HOUR = 3600.0
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ANNA = Address(platform="console", user_id="anna")


class HeldAdapter(RecordingAdapter):
    """Sends are held until released, one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.sending = asyncio.Event()

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        self.sending.set()
        await self.release.wait()
        return await super().send(address, prompt)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(f"sqlite:///{tmp_path / 'marks.db'}")
    await store.open()
    await store.migrate()
    store.conn.writer.linger = HOUR  # a lingering mark is written only with company
    try:
        yield store
    finally:
        await store.close()


def owed(text: str, kind: str = "question") -> OutboxMessage:
    prompt = Prompt(kind=kind, session_id="s-anna", text=text)  # type: ignore[arg-type]
    return OutboxMessage(address=ANNA, kind=kind, body=prompt.model_dump_json(), created_at=NOW)


async def statuses(storage: SQLiteStorage) -> list[str]:
    return [m.status for m in sorted(await storage.outbox_recent(), key=lambda m: m.id or 0)]


async def delivered(adapter: RecordingAdapter, count: int) -> None:
    for _ in range(1000):
        if len(adapter.sent) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} deliveries expected, {len(adapter.sent)} made")


async def test_a_question_nobody_follows_is_marked_sent_with_the_next_write(
    storage: SQLiteStorage,
) -> None:
    adapter = RecordingAdapter()
    await storage.outbox_put([owed("How likely are you to recommend us?")])
    sender = Sender(storage, {"console": adapter}, poll=HOUR)
    sender.start()  # its first claim finds the question
    try:
        await delivered(adapter, 1)
        for _ in range(20):
            await asyncio.sleep(0)
        assert await statuses(storage) == ["pending"]  # delivered; the mark waits for company
        writer = storage.conn.writer
        batches = writer.batches
        boris = InboxEvent(platform="console", event_id="boris-1", key="console:boris",
                           payload="{}", received_at=NOW, user_id="boris")  # fmt: skip
        await storage.inbox_put([boris])
        await _until_sent(storage, 1)
        assert writer.batches == batches + 1  # Boris's event and Anna's mark: one batch
    finally:
        await sender.stop()


async def looked(sender: Sender) -> None:
    for _ in range(1000):
        if sender.looked:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the sender never claimed after its wake")


async def _until_sent(storage: SQLiteStorage, count: int) -> None:
    for _ in range(1000):
        if (await statuses(storage)).count("sent") >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} marked sent expected: {await statuses(storage)}")


@pytest.mark.parametrize("how", ["along", "wake"])
async def test_more_owed_while_a_question_is_out_goes_out_when_the_question_lands(
    storage: SQLiteStorage, how: str
) -> None:
    adapter = HeldAdapter()
    sender = Sender(storage, {"console": adapter}, poll=HOUR)
    sender.start()
    try:
        await storage.outbox_put([owed("How likely are you to recommend us?")])
        sender.wake()
        await asyncio.wait_for(adapter.sending.wait(), 10)  # the question is on its way
        more = [owed("Thank you for taking the time to answer!", "thanks")]
        if how == "along":
            await sender.along(storage.outbox_put(more), more)
        else:
            await storage.outbox_put(more)
            sender.wake()
        await looked(sender)  # its claim found Anna's chat busy: nothing more to look for
        adapter.release.set()
        await delivered(adapter, 2)  # not left to the hour-long poll
        assert [d.prompt.kind for d in adapter.sent] == ["question", "thanks"]
        assert (await statuses(storage))[0] == "sent"
    finally:
        await sender.stop()


@pytest.mark.parametrize("lane", ["interactive", "bulk"])
async def test_more_rows_than_the_sender_holds_all_go_out_without_waiting_for_the_poll(
    storage: SQLiteStorage, lane: str
) -> None:
    """Ten customers owed a question, a sender that holds two at a time: each delivery that
    ends makes room, and the next rows are claimed then (not at the hour-long poll)."""
    adapter = RecordingAdapter()
    rows = [
        owed(f"Question for customer {n}").model_copy(
            update={"address": Address(platform="console", user_id=f"c{n}"), "lane": lane}
        )
        for n in range(10)
    ]
    await storage.outbox_put(rows)
    sender = Sender(storage, {"console": adapter}, poll=HOUR, concurrency=2)
    sender.start()
    try:
        await delivered(adapter, 10)
        assert sorted(d.address.user_id for d in adapter.sent) == sorted(f"c{n}" for n in range(10))
    finally:
        await sender.stop()


async def test_two_claims_at_once_hold_no_more_bulk_rows_than_the_budget_sends_soon(
    storage: SQLiteStorage,
) -> None:
    """A claim beside a write and the loop's own claim can be in flight together; the bulk
    rows they take together stay within bulk_cap (here 1: one message a second), so no bulk
    row waits out its lease in the sender's hands."""
    news = [owed(f"News {n}", kind="notice").model_copy(update={"lane": "bulk"}) for n in range(3)]
    news = [m.model_copy(update={"address": Address(platform="console", user_id=f"c{n}")})
            for n, m in enumerate(news)]  # fmt: skip
    await storage.outbox_put(news)
    sender = Sender(storage, {"console": RecordingAdapter()},
                    {"console": Budget(Limits(per_second=1))}, poll=HOUR)  # fmt: skip
    assert sender.bulk_cap() == 1
    first, second = await asyncio.gather(sender._claim(10), sender._claim(10))
    assert len(first) + len(second) == 1
    assert await sender._claim(10) == []  # the one held fills bulk's room
