"""The dispatcher on real SQLite with a fake clock: scheduled sends, one reminder, expiry,
throttle windows, flood-control backoff, restarts and invites."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.chat import Address, DeliveryError, Inbound
from bot.conversation.dispatch import Dispatcher
from bot.conversation.runtime import Runtime, UnknownFlow
from bot.conversation.sender import Sender
from bot.settings import SurveysConfig
from bot.survey.loader import FlowRegistry
from storage.sqlite.backend import SQLiteStorage
from tests.support.clock import FakeClock, TimedAdapter

ANNA = Address(platform="telegram", user_id="1001")
BORIS = Address(platform="telegram", user_id="1002")
SURVEYS = SurveysConfig(
    expires_after=timedelta(hours=72), remind_after=timedelta(hours=24),
    throttle=timedelta(days=30), throttle_per_flow={"nps": timedelta(days=90)},
)  # fmt: skip


Build = Callable[[], Dispatcher]


@pytest.fixture
async def build(
    registry: FlowRegistry, tmp_path: Path, clock: FakeClock, telegram: TimedAdapter
) -> AsyncIterator[Build]:
    """A fresh dispatcher each call, on the same database: calling it again is a restart."""
    opened: list[SQLiteStorage] = []

    def make() -> Dispatcher:
        storage = SQLiteStorage(f"sqlite:///{tmp_path / 'surveys.db'}")
        asyncio.get_running_loop()  # must be called inside the test's loop
        opened.append(storage)
        runtime = Runtime(registry, storage, {"telegram": telegram}, clock=clock)
        return Dispatcher(runtime, storage, SURVEYS, clock=clock)

    yield make
    for storage in opened:
        await storage.close()


@pytest.fixture
async def dispatcher(build: Build) -> Dispatcher:
    d = build()
    await d.runtime.storage.open()
    return d


async def restart(build: Build, old: Dispatcher) -> Dispatcher:
    await old.runtime.storage.close()
    new = build()
    await new.runtime.storage.open()
    return new


def tap(dispatcher: Dispatcher, adapter: TimedAdapter, label: str, user: str = "1001") -> Inbound:
    prompt = adapter.last()
    button = next(b for row in prompt.rows for b in row if b.label == label)
    return Inbound(platform="telegram", kind="tap", user_id=user, payload=button.payload)


async def status(dispatcher: Dispatcher, session_id: str | None) -> str:
    assert session_id is not None
    session = await dispatcher.runtime.storage.get_session(session_id)
    assert session is not None
    return session.status


async def test_a_survey_sent_now_queues_one_reminder_and_its_expiry(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    result = await dispatcher.request("csat", ANNA, {"ticket_id": "T-1"}, triggered_by="api")
    assert result.status == "sent" and result.created
    assert [p.kind for p in telegram.prompts()] == ["question"]
    assert result.session_id is not None
    jobs = await dispatcher.runtime.storage.pending_jobs(result.session_id)
    assert {(j.kind, j.run_at - clock()) for j in jobs} == {
        ("remind", timedelta(hours=24)), ("expire", timedelta(hours=72))
    }  # fmt: skip


async def test_a_survey_scheduled_for_later_goes_out_once_at_its_time(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    at = clock() + timedelta(hours=1)
    result = await dispatcher.request("nps", ANNA, triggered_by="cli", send_at=at)
    assert result.status == "scheduled" and telegram.sent == []
    clock.advance(minutes=59)
    assert await dispatcher.tick() == 0 and telegram.sent == []
    clock.advance(minutes=1)
    assert await dispatcher.tick() == 1
    assert len(telegram.sent) == 1 and telegram.times == [at]
    assert await status(dispatcher, result.session_id) == "active"
    clock.advance(minutes=5)
    await dispatcher.tick()
    assert len(telegram.sent) == 1


async def test_a_customer_who_has_not_finished_is_reminded_once(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    await dispatcher.request("nps", ANNA, triggered_by="api")
    clock.advance(hours=23)
    await dispatcher.tick()
    assert len(telegram.sent) == 1
    clock.advance(hours=1)
    await dispatcher.tick()
    reminder = telegram.last()
    assert reminder.kind == "reminder" and reminder.hint and "reminder" in reminder.hint
    clock.advance(hours=24)
    await dispatcher.tick()
    assert [p.kind for p in telegram.prompts()] == ["question", "reminder"]


async def test_a_customer_who_finished_gets_no_reminder(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    await dispatcher.request("csat", ANNA, triggered_by="api")
    await dispatcher.runtime.handle(tap(dispatcher, telegram, "Yes"))
    assert telegram.last().kind == "thanks"
    clock.advance(hours=25)
    await dispatcher.tick()
    assert [p.kind for p in telegram.prompts()] == ["question", "thanks"]


async def test_an_unanswered_survey_expires_and_a_late_tap_gets_the_expired_notice(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    result = await dispatcher.request("csat", ANNA, triggered_by="api")
    question = tap(dispatcher, telegram, "No")
    clock.advance(hours=72)
    await dispatcher.tick()
    assert await status(dispatcher, result.session_id) == "expired"
    await dispatcher.runtime.handle(question)
    assert telegram.notices() == ["This survey has expired. Thank you anyway!"]
    assert [r async for r in dispatcher.runtime.storage.export_rows()] == []


async def test_a_customer_asked_within_the_throttle_window_is_not_asked_again(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    first = await dispatcher.request("csat", ANNA, triggered_by="api")
    clock.advance(days=29)
    again = await dispatcher.request("csat", ANNA, triggered_by="api")
    assert again.status == "throttled" and again.session_id is None
    assert again.reason and "1001" in again.reason and "30 days" in again.reason
    other_flow = await dispatcher.request("ces", ANNA, triggered_by="api")
    other_customer = await dispatcher.request("csat", BORIS, triggered_by="api")
    assert other_flow.status == other_customer.status == "sent"
    clock.advance(days=1, seconds=1)
    later = await dispatcher.request("csat", ANNA, triggered_by="api")
    assert later.status == "sent" and later.session_id != first.session_id


async def test_a_flow_can_have_its_own_throttle_window(
    dispatcher: Dispatcher, clock: FakeClock
) -> None:
    await dispatcher.request("nps", ANNA, triggered_by="api")
    clock.advance(days=60)
    assert (await dispatcher.request("nps", ANNA, triggered_by="api")).status == "throttled"
    clock.advance(days=31)
    assert (await dispatcher.request("nps", ANNA, triggered_by="api")).status == "sent"


async def test_the_same_idempotency_key_returns_the_same_survey_and_sends_once(
    dispatcher: Dispatcher, telegram: TimedAdapter
) -> None:
    results = await asyncio.gather(
        *(dispatcher.request("csat", ANNA, triggered_by="api", idempotency_key="T-7")
          for _ in range(5))
    )  # fmt: skip
    assert len({r.session_id for r in results}) == 1
    assert sorted(r.created for r in results) == [False, False, False, False, True]
    assert len(telegram.sent) == 1


async def test_concurrent_requests_for_one_customer_send_one_survey(
    dispatcher: Dispatcher, telegram: TimedAdapter
) -> None:
    results = await asyncio.gather(
        *(dispatcher.request("csat", ANNA, triggered_by="api") for _ in range(4))
    )
    assert sorted(r.status for r in results) == ["sent", "throttled", "throttled", "throttled"]
    assert len(telegram.sent) == 1


def start_sender(dispatcher: Dispatcher, clock: FakeClock) -> Sender:
    """The sender of this process, on the test's clock: it delivers what is owed."""
    runtime = dispatcher.runtime
    runtime.sender = Sender(
        runtime.storage, runtime.adapters, poll=0.01, clock=clock,
        on_sent=runtime.record_delivery, on_dead=runtime.record_dead,
    )  # fmt: skip
    runtime.sender.start()
    return runtime.sender


async def test_flood_control_keeps_the_question_owed_and_a_sender_delivers_it_after(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    telegram.fail_next.append(DeliveryError("Too Many Requests", retry_after=30))
    result = await dispatcher.request("csat", ANNA, triggered_by="api")
    assert result.status == "scheduled" and result.reason == "Too Many Requests"
    [owed] = await dispatcher.storage.outbox_recent(status="pending")
    assert owed.session_id == result.session_id and owed.lane == "bulk"
    assert owed.next_attempt_at is not None
    assert owed.next_attempt_at >= clock() + timedelta(seconds=30)  # after Retry-After
    assert telegram.sent == []
    clock.advance(seconds=(owed.next_attempt_at - clock()).total_seconds())
    sender = start_sender(dispatcher, clock)
    await asyncio.wait_for(telegram.delivered.wait(), 10)
    await sender.stop()
    assert len(telegram.sent) == 1 and await status(dispatcher, result.session_id) == "active"
    session = await dispatcher.storage.get_session(result.session_id or "")
    assert session is not None and session.sent_at == clock() and session.prompted == 0


async def test_a_customer_who_blocked_the_bot_is_reported_as_failed(
    dispatcher: Dispatcher, telegram: TimedAdapter
) -> None:
    telegram.fail_next.append(DeliveryError("Forbidden: bot was blocked", permanent=True))
    result = await dispatcher.request("csat", ANNA, triggered_by="api")
    assert result.status == "failed" and "blocked" in (result.reason or "")
    assert await status(dispatcher, result.session_id) == "failed"
    assert await dispatcher.runtime.storage.pending_jobs(result.session_id or "") == []


async def test_a_first_question_the_sender_gives_up_on_ends_the_survey_as_failed(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    sender = start_sender(dispatcher, clock)
    telegram.fail_next.append(DeliveryError("Bad Request: chat not found", permanent=True))
    result = await dispatcher.request("nps", BORIS, triggered_by="api")
    await sender.stop()
    assert (result.status, result.reason) == ("failed", "Bad Request: chat not found")
    session = await dispatcher.storage.get_session(result.session_id or "")
    assert session is not None and (session.status, session.sent_at) == ("failed", None)
    assert session.error == "Bad Request: chat not found"
    [dead] = await dispatcher.storage.outbox_recent(status="dead")
    assert dead.session_id == session.id


async def test_jobs_due_while_stopped_run_exactly_once_after_a_restart(
    build: Build, dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    at = clock() + timedelta(hours=1)
    ids = [
        (await dispatcher.request("csat", Address(platform="telegram", user_id=f"c{n}"),
                                  triggered_by="api", send_at=at)).session_id
        for n in range(5)
    ]  # fmt: skip
    await dispatcher.runtime.storage.close()  # the process stops
    clock.advance(hours=3)  # ... and is down while the sends fall due
    first = build()
    await first.runtime.storage.open()
    second = build()  # a second worker on the same database
    await second.runtime.storage.open()
    await asyncio.gather(first.tick(), second.tick())
    assert sorted(d.address.user_id for d in telegram.sent) == [f"c{n}" for n in range(5)]
    again = await restart(build, first)
    await again.tick()
    assert len(telegram.sent) == 5
    assert {await status(again, sid) for sid in ids} == {"active"}


async def test_a_job_held_by_a_crashed_worker_runs_once_when_its_lease_lapses(
    build: Build, dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    await dispatcher.request("csat", ANNA, triggered_by="api", send_at=clock() + timedelta(1))
    clock.advance(days=1)
    claimed = await dispatcher.runtime.storage.claim_jobs(clock(), 10, dispatcher.lease)
    assert len(claimed) == 1  # ... and the worker dies before sending
    survivor = await restart(build, dispatcher)
    assert await survivor.tick() == 0 and telegram.sent == []
    clock.advance(seconds=dispatcher.lease.total_seconds() + 1)
    assert await survivor.tick() == 1
    assert await survivor.tick() == 0
    assert len(telegram.sent) == 1


async def test_a_scheduled_survey_past_its_expiry_is_not_sent(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    result = await dispatcher.request(
        "csat", ANNA, triggered_by="api", send_at=clock() + timedelta(hours=1)
    )
    clock.advance(days=5)  # the server was down for days
    await dispatcher.tick()
    assert telegram.sent == [] and await status(dispatcher, result.session_id) == "expired"


async def test_an_invite_token_starts_its_flow_once(dispatcher: Dispatcher) -> None:
    token = await dispatcher.invite("nps", {"ticket_id": "T-9"})
    assert len(token) == 16 and dispatcher.runtime.registry.get(token) is None
    storage = dispatcher.runtime.storage
    assert await storage.consume_invite(token, dispatcher.clock()) == ("nps", {"ticket_id": "T-9"})
    assert await storage.consume_invite(token, dispatcher.clock()) is None
    with pytest.raises(UnknownFlow):
        await dispatcher.invite("nope")


async def test_the_job_loop_runs_due_jobs_until_stopped(
    dispatcher: Dispatcher, telegram: TimedAdapter, clock: FakeClock
) -> None:
    dispatcher.poll_interval = 0.01
    await dispatcher.request("csat", ANNA, triggered_by="api", send_at=clock() + timedelta(1))
    clock.advance(days=1)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop))
    await asyncio.wait_for(telegram.delivered.wait(), timeout=30)  # a bound against a hang
    stop.set()
    await loop
    assert len(telegram.sent) == 1
