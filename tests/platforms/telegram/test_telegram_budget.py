"""The sender's budget through the real python-telegram-bot against the fake Bot API: a
customer's tap is answered at once, their next question overtakes bulk sends waiting for the
budget, and a 429 for one chat holds back only that chat, for exactly as long as Telegram said.

The budget's clock is moved by hand (``ManualClock``): a message waiting for a slot goes the
moment the test moves time, never on the wall clock, and every check is on the order of the
calls the fake received."""

from __future__ import annotations

import pytest

from bot.chat import Address, Prompt
from bot.conversation.budget import HEADROOM, Budget, Limits
from storage.base import OutboxMessage, utcnow
from tests.support.clock import ManualClock
from tests.support.telegram_harness import ANNA, BOB, ELENI, RASA, World

# PTB's RetryAfter reads its own deprecated int retry_after while it is built
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
RECIPIENTS = (BOB, ELENI, RASA)


def timed_budget(tg: World, limits: Limits) -> tuple[Budget, ManualClock]:
    """Give the running sender a Telegram budget on a clock the test moves."""
    clock = ManualClock()
    budget = Budget(limits, clock, clock.sleep)
    assert tg.svc.sender is not None
    tg.svc.sender.budgets["telegram"] = budget
    return budget, clock


async def owe_bulk_notices(tg: World, users: tuple[int, ...]) -> None:
    """A helpdesk's announcement to several customers, queued in the bulk lane."""
    rows = [
        OutboxMessage(
            address=Address(platform="telegram", user_id=str(user)),
            kind="notice",
            lane="bulk",
            body=Prompt(
                kind="notice", session_id="bulk", text=f"News for {user}"
            ).model_dump_json(),
            created_at=utcnow(),
        )
        for user in users
    ]
    await tg.svc.storage.outbox_put(rows)
    assert tg.svc.sender is not None
    tg.svc.sender.wake()


def bulk_sent(tg: World) -> list[str]:
    return [m["text"] for m in tg.fake.sent if m["text"].startswith("News for")]


async def test_a_tap_is_answered_at_once_and_the_reply_overtakes_waiting_bulk_sends(
    tg: World,
) -> None:
    anna, fake = tg.person(ANNA), tg.fake
    anna.says("/start nps")
    question = await anna.receives()
    budget, clock = timed_budget(tg, Limits(per_second=1))  # one message a second, to anyone
    await owe_bulk_notices(tg, RECIPIENTS)
    await fake.wait_for(lambda: len(bulk_sent(tg)) == 1)  # this second's slot: the rest wait

    answered = await anna.taps(question, "9")  # the budget is spent; the tap is answered anyway
    assert answered["callback_query_id"]
    assert fake.edits == [] and len(bulk_sent(tg)) == 1
    # the edit of her question and the next question wait side by side (two streams)
    await fake.wait_for(lambda: budget.waiting("interactive") == 2)

    while anna.nothing_new():  # each second one message goes: Anna's before any bulk
        assert len(bulk_sent(tg)) == 1
        granted = budget.granted
        clock.advance(1 / HEADROOM)
        await fake.wait_for(lambda: budget.granted > granted)  # noqa: B023
        await fake.wait_for(lambda: budget.waiting("interactive") or not anna.nothing_new())
    follow_up = await anna.receives()
    assert "What did you like most?" in follow_up["text"]
    assert anna.message_now(question)["text"].endswith("Your answer: 9")
    assert len(bulk_sent(tg)) == 1

    for sent in range(2, len(RECIPIENTS) + 1):  # then the bulk goes on, one a second
        await fake.wait_for(lambda: budget.waiting("bulk") == 1)
        clock.advance(1 / HEADROOM)
        await fake.wait_for(lambda: len(bulk_sent(tg)) == sent)  # noqa: B023
    assert fake.too_many_requests == 0


async def test_a_429_for_one_chat_holds_back_only_that_chat_for_exactly_retry_after(
    tg: World,
) -> None:
    anna, bob, fake = tg.person(ANNA), tg.person(BOB), tg.fake
    for person in (anna, bob):
        person.says("/start nps")
        await person.taps(await person.receives(), "10")
        await person.receives()  # "What did you like most?"
    budget, clock = timed_budget(tg, Limits())  # no pace, only Telegram's pauses
    fake.fail_next("sendMessage", 1, retry_after=5)

    anna.says("Quick answers")
    await fake.wait_for(lambda: fake.too_many_requests == 1)  # Anna's thanks: 429, 5 s
    await fake.wait_for(lambda: budget.waiting("interactive") == 1)
    bob.says("Friendly staff")
    assert "Thank you" in (await bob.receives())["text"]  # Bob is not held up
    assert anna.nothing_new()

    granted = budget.granted
    clock.advance(4.9)
    await fake.wait_for(lambda: budget.waiting("interactive") == 1)
    assert budget.granted == granted  # not a moment before the 5 s Telegram named
    clock.advance(0.1)
    assert "Thank you" in (await anna.receives())["text"]
    statuses = [
        c.status for c in fake.method_calls("sendMessage") if c.params["chat_id"] == str(ANNA)
    ]
    assert statuses[-2:] == [429, 200]  # python-telegram-bot did not retry it on its own
