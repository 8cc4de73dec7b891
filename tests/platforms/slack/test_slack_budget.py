"""The sender's budget through slack_sdk against the fake Slack: a click is acknowledged while
the sends it owes wait, and a 429 under the budget is not retried by slack_sdk on its own — the
workspace is paused for exactly Retry-After, then the message goes. The budget's clock is moved
by hand; every check is on what the fake received."""

from __future__ import annotations

from pathlib import Path

from bot.conversation.budget import Budget, Limits
from tests.fakes.slack_state import Call
from tests.support.clock import ManualClock
from tests.support.slack_support import AMY, STAFF, action_id_of, workspace


def post_statuses(calls: list[Call]) -> list[int]:
    return [c.status for c in calls if c.method == "chat.postMessage"]


async def test_a_click_is_acked_at_once_and_a_429_pauses_for_exactly_retry_after(
    tmp_path: Path, flows_dir: Path
) -> None:
    async with workspace(tmp_path, flows_dir, "socket") as ws:
        assert await ws.command(STAFF, f"csat <@{AMY}>") == [f"Survey “csat” sent to <@{AMY}>."]
        question = ws.question(AMY)
        clock = ManualClock()
        budget = Budget(Limits(), clock, clock.sleep)  # no pace: only Slack's pauses
        assert ws.svc.sender is not None
        ws.svc.sender.budgets["slack"] = budget
        ws.fake.fail_next("chat.postMessage", 1, retry_after=3)

        envelope = await ws.fake.click(AMY, question, action_id_of(question, "Yes"))
        await ws.fake.wait_ack(envelope)  # acknowledged whatever the sends do
        await ws.fake.wait_for(lambda: budget.waiting("interactive") == 1, what="paused")
        assert post_statuses(ws.fake.calls)[-1] == 429  # the follow-up: Slack said 3 s
        granted = budget.granted
        clock.advance(2.9)
        await ws.fake.wait_for(lambda: budget.waiting("interactive") == 1)
        assert budget.granted == granted and len(ws.messages(AMY)) == 1

        clock.advance(0.1)
        await ws.fake.wait_for(lambda: len(ws.messages(AMY)) == 2, what="the follow-up")
        assert post_statuses(ws.fake.calls)[-2:] == [429, 200]  # slack_sdk did not retry it
