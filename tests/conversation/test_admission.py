"""What every trigger must pass in Dispatcher.request, whoever sends it: the context limits, the
throttle (also for surveys a customer starts, with a per-flow window from the flow's YAML) and
idempotency keys bound to one request. Real SQLite, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.chat import Address, Inbound
from bot.conversation.admission import IdempotencyConflict, human_duration
from bot.conversation.config import SurveysConfig
from bot.conversation.dispatch import Dispatcher
from bot.conversation.runtime import Runtime
from bot.survey.loader import FlowRegistry
from storage.sqlite.backend import SQLiteStorage
from tests.support.clock import FakeClock, TimedAdapter

ANNA = Address(platform="telegram", user_id="1001")
ELENI = Address(platform="telegram", user_id="1002")
RASA = Address(platform="telegram", user_id="1003")
START = "telegram:start"


def dispatcher_for(
    registry: FlowRegistry, storage: SQLiteStorage, telegram: TimedAdapter, clock: FakeClock,
    surveys: SurveysConfig | None = None,
) -> Dispatcher:  # fmt: skip
    runtime = Runtime(registry, storage, {"telegram": telegram}, clock=clock)
    return Dispatcher(runtime, storage, surveys or SurveysConfig(), clock=clock)


@pytest.fixture
async def dispatcher(
    registry: FlowRegistry, sqlite_storage: SQLiteStorage, telegram: TimedAdapter, clock: FakeClock
) -> AsyncIterator[Dispatcher]:
    yield dispatcher_for(registry, sqlite_storage, telegram, clock)


async def answer_nps(d: Dispatcher, who: Address, score: str) -> None:
    for text in (score, "/skip"):
        kind = "skip" if text == "/skip" else "text"
        await d.runtime.handle(Inbound(platform="telegram", kind=kind, user_id=who.user_id,
                                       text=text))  # fmt: skip


async def sessions(storage: SQLiteStorage) -> list[tuple[str, str]]:
    rows = sorted([r async for r in storage.dump_rows("sessions")], key=lambda r: r["user_id"])
    return [(str(r["user_id"]), str(r["flow_id"])) for r in rows]


async def test_a_customer_starting_nps_20_times_is_counted_once_and_thanked_in_their_language(
    dispatcher: Dispatcher, telegram: TimedAdapter, sqlite_storage: SQLiteStorage
) -> None:
    for who, lang in ((ANNA, "en"), (ELENI, "el"), (RASA, "lt")):
        for attempt in range(20):
            result = await dispatcher.request(
                "nps", who, triggered_by=START, locale=lang, idempotency_key=f"{who}:{attempt}",
                throttle=False,  # what a platform may pass: a customer cannot skip the throttle
            )  # fmt: skip
            assert result.status == ("sent" if attempt == 0 else "throttled")
            await answer_nps(dispatcher, who, "9")
    assert await sessions(sqlite_storage) == [("1001", "nps"), ("1002", "nps"), ("1003", "nps")]
    thanked = [d for d in telegram.sent if d.prompt.kind == "notice"]
    assert {(d.address.user_id, d.prompt.text) for d in thanked} == {
        ("1001", "You already told us recently. Thank you!"),
        ("1002", "Μας το έχετε ήδη πει πρόσφατα. Σας ευχαριστούμε!"),
        ("1003", "Jūs mums tai jau neseniai pasakėte. Ačiū!"),
    }
    assert len(thanked) == 3 * 19


async def test_a_redelivered_start_is_thanked_once(
    dispatcher: Dispatcher, telegram: TimedAdapter
) -> None:
    await dispatcher.request("nps", ANNA, triggered_by=START, idempotency_key="tg-update:1")
    for _ in range(3):  # the same update, delivered three times
        await dispatcher.request("nps", ANNA, triggered_by=START, idempotency_key="tg-update:2")
    assert [d.prompt.kind for d in telegram.sent] == ["question", "notice"]


async def test_the_flow_yaml_sets_its_own_throttle_and_config_overrides_it(
    flows_dir: Path, sqlite_storage: SQLiteStorage, telegram: TimedAdapter, clock: FakeClock
) -> None:
    nps = flows_dir / "nps.yaml"
    nps.write_text(nps.read_text(encoding="utf-8") + "throttle: 2h\n", encoding="utf-8")
    registry = FlowRegistry(flows_dir)
    assert registry.load_all() == []
    d = dispatcher_for(registry, sqlite_storage, telegram, clock)
    assert (await d.request("nps", ANNA, triggered_by=START)).status == "sent"
    clock.advance(hours=1)
    throttled = await d.request("nps", ANNA, triggered_by=START)
    assert throttled.status == "throttled" and "window of 2 hours" in (throttled.reason or "")
    clock.advance(hours=2)
    assert (await d.request("nps", ANNA, triggered_by=START)).status == "sent"
    # an admin's surveys.throttle_per_flow in config.yaml wins over the flow file
    strict = SurveysConfig(throttle_per_flow={"nps": timedelta(days=90)})
    d = dispatcher_for(registry, sqlite_storage, telegram, clock, strict)
    clock.advance(hours=3)
    assert (await d.request("nps", ANNA, triggered_by=START)).status == "throttled"


async def test_a_throttle_reason_speaks_in_human_durations_and_the_right_tense(
    dispatcher: Dispatcher, clock: FakeClock
) -> None:
    later = clock() + timedelta(days=1)
    await dispatcher.request("csat", ANNA, triggered_by="cli", send_at=later)
    again = await dispatcher.request("csat", ANNA, triggered_by="cli")
    assert again.reason == (
        "telegram:1001 already has 'csat' scheduled for 2026-03-03T09:00:00+00:00, within the "
        "throttle window of 30 days"
    )
    await dispatcher.request("csat", ELENI, triggered_by="cli")
    clock.advance(minutes=90)
    asked = await dispatcher.request("csat", ELENI, triggered_by="cli")
    assert asked.reason == (
        "telegram:1002 was asked 'csat' at 2026-03-02T09:00:00+00:00, within the throttle "
        "window of 30 days"
    )
    assert [human_duration(timedelta(**kw)) for kw in ({"days": 1}, {"hours": 26},
            {"minutes": 90}, {"weeks": 2}, {"days": 10})] == [
        "1 day", "1 day 2 hours", "1 hour 30 minutes", "2 weeks", "10 days"]  # fmt: skip


@pytest.mark.parametrize(
    ("context", "why"),
    [
        ({f"k{i}": "v" for i in range(201)}, "201 keys; at most 50"),
        ({"note": "x" * 20_000}, "20000 characters; at most 1000"),
        ({"k" * 65: "v"}, "1 to 64 characters"),
    ],
)
async def test_a_context_over_the_limits_is_refused_whoever_sends_it(
    dispatcher: Dispatcher,
    sqlite_storage: SQLiteStorage,
    telegram: TimedAdapter,
    context: dict[str, str],
    why: str,
) -> None:
    for source in ("slack:U0STAFF", "telegram:9001", "cli", "api"):
        result = await dispatcher.request("csat", ANNA, context, triggered_by=source)
        assert result.status == "failed" and why in (result.reason or ""), source
    with pytest.raises(ValueError, match=r"at most|1 to 64"):
        await dispatcher.invite("csat", context)
    assert await sessions(sqlite_storage) == [] and telegram.sent == []


async def test_an_idempotency_key_belongs_to_one_flow_customer_and_context(
    dispatcher: Dispatcher,
) -> None:
    ctx = {"ticket_id": "T-1"}
    first = await dispatcher.request("csat", ANNA, ctx, triggered_by="cli", idempotency_key="k")
    again = await dispatcher.request("csat", ANNA, ctx, triggered_by="cli", idempotency_key="k")
    assert (again.session_id, again.created) == (first.session_id, False)
    for flow, who, context in (("nps", ANNA, ctx), ("csat", ELENI, ctx), ("csat", ANNA, {})):
        with pytest.raises(IdempotencyConflict, match="'k' was already used"):
            await dispatcher.request(flow, who, context, triggered_by="cli", idempotency_key="k")
