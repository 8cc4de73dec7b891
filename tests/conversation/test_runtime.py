"""The runtime with a recording adapter and real SQLite: commit before reply, exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.chat import Address, Inbound, Prompt
from bot.conversation.runtime import Runtime
from bot.conversation.sender import Sender
from bot.survey.loader import FlowRegistry
from storage.base import utcnow
from storage.migrations import SQLITE
from storage.sqlite.backend import SQLiteStorage
from tests.support.recording import RecordingAdapter

ANNA = Address(platform="console", user_id="anna")


def tap_on(prompt: Prompt, label: str, user: str = "anna", event: str | None = None) -> Inbound:
    button = next(b for row in prompt.rows for b in row if b.label == label)
    return Inbound(platform="console", kind="tap", user_id=user, payload=button.payload,
                   event_id=event)  # fmt: skip


def typed(text: str, user: str = "anna", event: str | None = None) -> Inbound:
    return Inbound(platform="console", kind="text", user_id=user, text=text, event_id=event)


async def answers(storage: SQLiteStorage) -> list[tuple[str, object]]:
    return [
        (r.question_id, r.value if r.text is None else r.text) async for r in storage.export_rows()
    ]


async def test_the_same_event_delivered_twice_records_one_answer(
    runtime: Runtime, adapter: RecordingAdapter, sqlite_storage: SQLiteStorage
) -> None:
    await runtime.start_survey("csat", ANNA)
    event = tap_on(adapter.last(), "Yes", event="upd-1")
    await runtime.handle(event)
    await runtime.handle(event)
    assert await answers(sqlite_storage) == [("satisfied", 1)]
    assert [p.kind for p in adapter.prompts()] == ["question", "thanks"]


async def test_a_double_tap_records_once_and_the_second_tap_is_told_so(
    runtime: Runtime, adapter: RecordingAdapter, sqlite_storage: SQLiteStorage
) -> None:
    await runtime.start_survey("ces", ANNA)
    first = adapter.last()
    await asyncio.gather(
        runtime.handle(tap_on(first, "6", event="a")), runtime.handle(tap_on(first, "2", event="b"))
    )
    assert len(await answers(sqlite_storage)) == 1
    assert adapter.notices() == ["You have already answered this question."]


async def test_someone_else_tapping_changes_nothing(
    runtime: Runtime, adapter: RecordingAdapter, sqlite_storage: SQLiteStorage
) -> None:
    await runtime.start_survey("csat", ANNA)
    await runtime.handle(tap_on(adapter.last(), "No", user="mallory"))
    assert await answers(sqlite_storage) == []
    assert adapter.notices() == ["This survey is for someone else."]


async def test_forged_and_garbage_payloads_are_refused(
    runtime: Runtime, adapter: RecordingAdapter, sqlite_storage: SQLiteStorage
) -> None:
    session = await runtime.start_survey("nps", ANNA)
    for payload in ("sb1:AAAAAAAAAAAA:0:9", f"sb1:{session.id}:0:99", "garbage", None):
        await runtime.handle(
            Inbound(platform="console", kind="tap", user_id="anna", payload=payload)
        )
    assert await answers(sqlite_storage) == []
    assert set(adapter.notices()) == {"This button is not valid any more."}


async def test_expired_survey_answers_politely_and_records_nothing(
    registry: FlowRegistry, sqlite_storage: SQLiteStorage, adapter: RecordingAdapter
) -> None:
    now = utcnow()
    clock = [now]
    runtime = Runtime(registry, sqlite_storage, {"console": adapter}, clock=lambda: clock[0])
    await runtime.start_survey("csat", ANNA)
    clock[0] = now + timedelta(hours=73)
    await runtime.handle(tap_on(adapter.last(), "Yes"))
    assert adapter.notices() == ["This survey has expired. Thank you anyway!"]
    assert await answers(sqlite_storage) == []


async def test_finished_survey_says_so(runtime: Runtime, adapter: RecordingAdapter) -> None:
    await runtime.start_survey("csat", ANNA)
    first = adapter.last()
    await runtime.handle(tap_on(first, "Yes"))
    await runtime.handle(tap_on(first, "No"))
    assert adapter.notices() == ["You have already completed this survey. Thank you!"]


async def test_a_restart_mid_survey_keeps_old_buttons_working(
    tmp_path: Path, registry: FlowRegistry, adapter: RecordingAdapter
) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    first_storage = SQLiteStorage(url)
    await first_storage.open()
    await Runtime(registry, first_storage, {"console": adapter}).start_survey("nps", ANNA)
    await first_storage.close()  # the process dies; nothing lives in memory

    storage = SQLiteStorage(url)
    await storage.open()
    fresh = Runtime(FlowRegistry(registry.flows_dir), storage, {"console": adapter})
    fresh.registry.load_all()
    await fresh.handle(tap_on(adapter.last(), "10"))
    assert await answers(storage) == [("score", 10)]
    assert adapter.last().question_id == "promoter_reason"
    await storage.close()


async def deliver_owed(sender: Sender, adapter: RecordingAdapter, question_id: str) -> None:
    """Run ``sender`` (a restarted process's) until ``question_id`` was delivered."""
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    for _ in range(500):
        if adapter.sent and adapter.last().question_id == question_id:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await running


async def test_a_question_owed_when_the_process_died_is_sent_after_the_restart(
    registry: FlowRegistry, sqlite_storage: SQLiteStorage, adapter: RecordingAdapter
) -> None:
    runtime = Runtime(registry, sqlite_storage, {"console": adapter})
    runtime.sender = Sender(sqlite_storage, runtime.adapters)  # never runs: the process dies
    await runtime.start_survey("nps", ANNA)
    assert adapter.sent == []  # the first question is owed with the session, not sent yet
    restarted = Sender(sqlite_storage, {"console": adapter}, on_sent=runtime.record_delivery)
    await deliver_owed(restarted, adapter, "score")  # the next process sends it
    first = adapter.last()
    session = await sqlite_storage.get_session(first.session_id)
    assert session is not None and session.sent_at is not None and session.prompted == 0
    await runtime.handle(tap_on(first, "4", event="e1"))  # committed with what it owes
    assert await answers(sqlite_storage) == [("score", 4)]
    assert adapter.last() is first  # the next question had not gone out yet
    await deliver_owed(Sender(sqlite_storage, {"console": adapter}), adapter, "detractor_reason")
    assert adapter.last().question_id == "detractor_reason"
    await runtime.handle(tap_on(first, "4", event="e3"))  # the customer taps again anyway
    assert adapter.notices() == ["You have already answered this question."]
    assert await answers(sqlite_storage) == [("score", 4)]


async def test_a_reply_racing_the_first_question_waits_for_it(
    runtime: Runtime, adapter: RecordingAdapter, sqlite_storage: SQLiteStorage
) -> None:
    sent = asyncio.Event()
    release = asyncio.Event()
    original = adapter.send

    async def slow_send(address: Address, prompt: Prompt) -> object:
        result = await original(address, prompt)
        sent.set()
        await release.wait()  # the platform delivered it; our bookkeeping is not done yet
        return result

    adapter.send = slow_send  # type: ignore[method-assign]
    starting = asyncio.create_task(runtime.start_survey("nps", ANNA))
    await sent.wait()
    replying = asyncio.create_task(runtime.handle(typed("9", event="fast")))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(starting, replying)
    assert await answers(sqlite_storage) == [("score", 9)]
    assert adapter.notices() == []


async def test_editing_a_flow_mid_survey_does_not_change_a_running_session(
    runtime: Runtime, adapter: RecordingAdapter, registry: FlowRegistry, flows_dir: Path
) -> None:
    await runtime.start_survey("csat", ANNA)
    path = flows_dir / "csat.yaml"
    edited = path.read_text(encoding="utf-8").replace("what_went_wrong", "what_broke")
    path.write_text(edited, encoding="utf-8")
    assert registry.reload(path) == []
    await runtime.handle(tap_on(adapter.last(), "No"))
    assert adapter.last().question_id == "what_went_wrong"
    await runtime.start_survey("csat", Address(platform="console", user_id="ben"))
    await runtime.handle(tap_on(adapter.last(), "No", user="ben"))
    assert adapter.last().question_id == "what_broke"


async def test_idempotency_key_never_sends_twice(
    runtime: Runtime, adapter: RecordingAdapter
) -> None:
    one = await runtime.start_survey("csat", ANNA, idempotency_key="ticket-42")
    two = await runtime.start_survey("csat", ANNA, idempotency_key="ticket-42")
    assert one.id == two.id and len(adapter.sent) == 1


async def test_a_redelivered_typed_answer_is_acknowledged_silently(
    runtime: Runtime, adapter: RecordingAdapter, sqlite_storage: SQLiteStorage
) -> None:
    await runtime.start_survey("nps", ANNA)
    await runtime.handle(typed("9", event="m1"))
    # the same delivery again, e.g. after a restart, while the survey waits on question 2
    await runtime.handle(typed("9", event="m1"))
    assert adapter.notices() == []
    assert await answers(sqlite_storage) == [("score", 9)]


async def test_processes_opening_a_new_database_together_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    stores = [SQLiteStorage(url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    assert {await s.migrate() for s in stores} == {len(SQLITE)}
    for s in stores:
        await s.close()


async def test_a_redelivered_last_answer_after_the_survey_ended_says_nothing(
    runtime: Runtime, adapter: RecordingAdapter, sqlite_storage: SQLiteStorage
) -> None:
    await runtime.start_survey("csat", ANNA)
    await runtime.handle(typed("no", event="m1"))
    await runtime.handle(typed("The agent never called back", event="m2"))
    await runtime.handle(typed("The agent never called back", event="m2"))
    assert adapter.notices() == []
    assert len(await answers(sqlite_storage)) == 2


async def test_no_survey_notice_owed_when_the_process_died_is_sent_once_after_the_restart(
    registry: FlowRegistry, sqlite_storage: SQLiteStorage, adapter: RecordingAdapter
) -> None:
    """Anna writes to the bot with no survey under way; the process dies before the "no
    survey" notice goes out. It was owed with the event's claim, so the restarted sender tells
    her, once: a redelivery of her message owes nothing more."""
    runtime = Runtime(registry, sqlite_storage, {"console": adapter})
    runtime.sender = Sender(sqlite_storage, runtime.adapters)  # never runs: the process dies
    await runtime.handle(typed("hello?", event="e1"))
    await runtime.handle(typed("hello?", event="e1"))  # the platform delivers it again
    assert adapter.sent == [] and adapter.notices() == []  # owed, not sent yet
    restarted = Sender(sqlite_storage, {"console": adapter})
    stop = asyncio.Event()
    running = asyncio.create_task(restarted.run(stop))
    for _ in range(500):
        if adapter.sent and not restarted.busy:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await running
    assert [(d.prompt.kind, d.prompt.text, d.address) for d in adapter.sent] == [
        ("notice", "There is no survey waiting for you right now.", ANNA)
    ]
