"""The sender's budget on its own, driven by a clock the test moves: who goes first, who waits,
and bulk's guaranteed share. No platform, no wall clock: every figure is a count of grants."""

from __future__ import annotations

import asyncio

from bot.conversation.budget import HEADROOM, OVERALL_BURST, Budget, Lane, Limits
from tests.support.clock import ManualClock


async def settle() -> None:
    """Let every task that can run now run (grants resolve futures; their tasks go on)."""
    for _ in range(20):
        await asyncio.sleep(0)


class Queue:
    """Messages waiting for the budget, each noting the order it was let through in."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.went: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def add(self, name: str, lane: Lane, chat: str, group: bool = False) -> None:
        async def wait() -> None:
            await self.budget.acquire(lane, chat, group=group)
            self.went.append(name)

        self.tasks.append(asyncio.create_task(wait()))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_a_customers_reply_overtakes_bulk_sends_already_waiting() -> None:
    clock = ManualClock()
    q = Queue(Budget(Limits(per_second=1), clock, clock.sleep))
    for i in range(3):
        q.add(f"bulk{i}", "bulk", f"recipient{i}")
    await settle()
    assert q.went == ["bulk0"]  # the second's one slot
    q.add("reply", "interactive", "anna")
    await settle()
    clock.advance(1 / HEADROOM)
    await settle()
    assert q.went == ["bulk0", "reply"]
    clock.advance(1 / HEADROOM)
    await settle()
    assert q.went == ["bulk0", "reply", "bulk1"]
    await q.close()


async def test_a_paused_chat_does_not_hold_up_another_chat() -> None:
    clock = ManualClock()
    budget = Budget(Limits(per_chat_per_second=1, chat_burst=3), clock, clock.sleep)
    q = Queue(budget)
    budget.pause("anna", 5)  # Telegram: 429, retry after 5 s, for Anna's chat
    q.add("to anna", "interactive", "anna")
    q.add("to bob", "interactive", "bob")
    await settle()
    assert q.went == ["to bob"]
    clock.advance(4.9)
    await settle()
    assert q.went == ["to bob"]  # exactly 5 s, not a moment less
    clock.advance(0.1)
    await settle()
    assert q.went == ["to bob", "to anna"]
    await q.close()


async def test_a_platform_wide_pause_holds_everyone_until_it_ends() -> None:
    clock = ManualClock()
    budget = Budget(Limits(per_second=30), clock, clock.sleep)
    q = Queue(budget)
    budget.pause(None, 2)
    q.add("a", "interactive", "anna")
    q.add("b", "bulk", "bob")
    await settle()
    assert q.went == []
    clock.advance(1.999)
    await settle()
    assert q.went == []  # exactly 2 s, not a moment less
    clock.advance(0.001)
    await settle()
    assert q.went == ["a", "b"]  # the customer first; the 30/s budget has room for both
    await q.close()


async def test_an_idle_budget_lets_a_step_through_and_no_second_holds_more_than_the_limit() -> None:
    clock = ManualClock()
    budget = Budget(Limits(per_second=30), clock, clock.sleep)
    q = Queue(budget)
    q.add("edit of anna's question", "interactive", "anna")
    q.add("anna's next question", "interactive", "anna")
    await settle()
    assert len(q.went) == 2  # a customer's step never waits for a slot of an idle budget
    for i in range(100):
        q.add(f"m{i}", "interactive" if i % 3 else "bulk", f"customer{i}")
    times = [clock.now] * 2
    for _ in range(500):  # 5 s
        before = len(q.went)
        await settle()
        times += [clock.now] * (len(q.went) - before)
        clock.advance(0.01)
    assert len(times) == 102
    # Telegram counts about 30 a second: no window of one second ever saw more
    second = 1 - 1e-6  # (the test clock adds up 0.01 s steps in floating point)
    assert max(sum(1 for t in times if start <= t < start + second) for start in times) <= 30
    await q.close()


async def test_one_chat_gets_a_short_burst_then_one_message_a_second() -> None:
    clock = ManualClock()
    q = Queue(Budget(Limits(per_chat_per_second=1, chat_burst=3), clock, clock.sleep))
    for i in range(5):
        q.add(f"m{i}", "interactive", "anna")
    q.add("other", "interactive", "bob")
    await settle()
    assert q.went == ["m0", "m1", "m2", "other"]
    clock.advance(1 / HEADROOM)
    await settle()
    assert q.went[-1] == "m3" and len(q.went) == 5
    await q.close()


async def test_a_group_gets_a_short_burst_and_never_more_than_its_messages_per_minute() -> None:
    clock = ManualClock()
    q = Queue(Budget(Limits(group_per_minute=20, chat_burst=3), clock, clock.sleep))
    for i in range(30):
        q.add(f"g{i}", "interactive", "-100", group=True)
    q.add("private", "interactive", "42")  # not a group: no per-minute limit
    await settle()
    assert q.went == ["g0", "g1", "g2", "private"]  # a tap's edit and next question at once
    times = [clock.now] * 3
    for _ in range(120 * 10):  # two minutes
        before = len(q.went)
        clock.advance(0.1)
        await settle()
        times += [clock.now] * (len(q.went) - before)
    assert len(times) >= 30  # about 16 a minute after the burst
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= 20


async def test_bulk_gets_its_minimum_share_while_customers_take_everything_else() -> None:
    clock = ManualClock()
    rate, share, seconds = 10.0, 0.2, 20
    budget = Budget(Limits(per_second=rate, bulk_min_share=share), clock, clock.sleep)
    went: list[Lane] = []

    async def sender(lane: Lane, chat: str) -> None:
        while True:  # always another message waiting in this lane
            await budget.acquire(lane, chat)
            went.append(lane)

    crowd = [asyncio.create_task(sender("interactive", f"customer{i}")) for i in range(30)]
    crowd += [asyncio.create_task(sender("bulk", f"recipient{i}")) for i in range(10)]
    await settle()
    burst = len(went)  # an idle budget's first window at once
    for _ in range(seconds * 100):
        clock.advance(0.01)
        await settle()
    for task in crowd:
        task.cancel()
    await asyncio.gather(*crowd, return_exceptions=True)
    slots = rate * HEADROOM * seconds
    assert burst == OVERALL_BURST
    assert abs(len(went) - burst - slots) <= 2  # then the budget itself is kept
    assert went.count("bulk") >= share * slots - 2  # bulk is never starved
    assert went.count("interactive") >= (1 - share) * slots - 2  # customers get the rest


async def test_bulk_takes_the_whole_budget_when_no_customer_waits() -> None:
    clock = ManualClock()
    budget = Budget(Limits(per_second=10, bulk_min_share=0.2), clock, clock.sleep)
    q = Queue(budget)
    for i in range(40):
        q.add(f"bulk{i}", "bulk", f"recipient{i}")
    await settle()
    for _ in range(200):
        clock.advance(0.01)
        await settle()
    assert len(q.went) == 1 + int(2 * 10 * HEADROOM)  # 2 s at the full rate
    await q.close()


async def test_no_limits_means_no_waiting() -> None:
    clock = ManualClock()
    q = Queue(Budget(Limits(), clock, clock.sleep))
    for i in range(100):
        q.add(f"m{i}", "bulk" if i % 2 else "interactive", "anna")
    await settle()
    assert len(q.went) == 100
    await q.close()
