"""What the fake Bot API does for the reliability stories, proven with the real
python-telegram-bot: unconfirmed updates come back, poison updates reach the bot as raw JSON,
webhook POSTs that were not answered 2xx are made again, and strict mode answers 429 where
Telegram's published limits would."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, Update
from telegram.error import BadRequest, RetryAfter

from tests.fakes.telegram_api import FakeTelegram, SendLimits

CUSTOMER = 5001
GROUP = -1001234567890


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.user(CUSTOMER, "Ann", language_code="lt")
        server.group(GROUP, "Support")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as b:
        yield b


async def raw_updates(bot: Bot, offset: int = 0) -> list[dict[str, Any]]:
    """getUpdates without PTB's parsing, as a bot that keeps the raw JSON calls it."""
    with pytest.warns(UserWarning, match="getUpdates"):
        result = await bot.do_api_request(
            "getUpdates", {"offset": offset, "timeout": 0}, return_type=None
        )
    assert isinstance(result, list)
    return result


async def test_an_update_comes_back_until_a_higher_offset_confirms_it(
    fake: FakeTelegram, bot: Bot
) -> None:
    ids = [fake.send_text(CUSTOMER, text)["update_id"] for text in ("one", "two", "three")]
    for _ in range(2):  # fetched but not confirmed: the same batch again
        assert [u.update_id for u in await bot.get_updates(timeout=0)] == ids
    assert fake.pending_updates == ids
    # offset = the first id + 1 confirms exactly the first one
    assert [u.update_id for u in await bot.get_updates(offset=ids[0] + 1, timeout=0)] == ids[1:]
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == ids[1:]
    assert await bot.get_updates(offset=ids[-1] + 1, timeout=0) == ()
    assert fake.pending_updates == []


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("reply_without_date", KeyError),
        ("sender_without_name", TypeError),
        ("not_an_object", AttributeError),
    ],
)
async def test_a_poison_update_breaks_ptb_parsing_but_arrives_raw_until_confirmed(
    fake: FakeTelegram, bot: Bot, kind: str, error: type[Exception]
) -> None:
    poison = fake.unparseable(CUSTOMER, kind)
    after = fake.send_text(CUSTOMER, "/start nps")
    with pytest.raises(error):
        await bot.get_updates(timeout=0)  # PTB parses the whole batch: one bad update stops it
    batch = await raw_updates(bot)
    assert [u["update_id"] for u in batch] == [poison["update_id"], after["update_id"]]
    assert batch[0] == poison
    with pytest.raises(error):
        Update.de_json(batch[0], bot)
    assert Update.de_json(batch[1], bot).message is not None
    # still there until the bot confirms past it
    assert [u["update_id"] for u in await raw_updates(bot)] == fake.pending_updates
    assert await raw_updates(bot, offset=after["update_id"] + 1) == []


async def test_an_unknown_update_type_parses_into_an_empty_update(
    fake: FakeTelegram, bot: Bot
) -> None:
    unknown = fake.unparseable(CUSTOMER, "unknown_type")
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == unknown["update_id"] and update.effective_message is None
    assert "purchased_paid_media_v9" in update.api_kwargs


async def test_inject_raw_delivers_the_body_exactly_and_numbers_it(
    fake: FakeTelegram, bot: Bot
) -> None:
    body = {"edited_message": {"message_id": 3, "date": 0, "chat": {"id": 1, "type": "private"}}}
    injected = fake.inject_raw(body)
    explicit = fake.inject_raw({"update_id": 42, "message": "odd"})
    assert injected == {"update_id": injected["update_id"], **body}
    assert [u["update_id"] for u in await raw_updates(bot)] == [42, injected["update_id"]]
    assert explicit["message"] == "odd"


async def test_the_webhook_is_posted_again_until_it_answers_2xx(
    fake: FakeTelegram, bot: Bot
) -> None:
    answers = [500, "hang", 200]  # an error, no answer in time, then success
    seen: list[int] = []
    release = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        seen.append((await request.json())["update_id"])
        answer = answers[min(len(seen), len(answers)) - 1]
        if answer == "hang":
            await release.wait()  # the fake stops waiting after webhook_timeout
        return web.Response(status=int(answer) if answer != "hang" else 200)

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.webhook_timeout = 0.3
    try:
        update = fake.send_text(CUSTOMER, "/start csat")
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/tg")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) == 3, timeout=10)
        assert fake.webhook_deliveries == [(update["update_id"], s) for s in (500, 0, 200)]
        assert seen == [update["update_id"]] * 3
        assert fake.pending_updates == []
        info = await bot.get_webhook_info()
        assert info.last_error_message == "Read timeout expired"  # the latest failure

        fake.webhook_max_attempts = 2  # a fake that gives up, like Telegram after long enough
        answers[:] = [500]
        seen.clear()
        gone = fake.send_text(CUSTOMER, "nobody answers this")
        await fake.wait_for(
            lambda: len(seen) == 2 and gone["update_id"] not in fake.pending_updates
        )
        assert fake.webhook_deliveries[-2:] == [(gone["update_id"], 500)] * 2
    finally:
        release.set()
        await bot.delete_webhook()
        await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(fake: FakeTelegram) -> Clock:
    fake.clock = clock = Clock()
    return clock


async def test_strict_limits_one_chat_gets_a_burst_then_one_message_a_second(
    fake: FakeTelegram, bot: Bot, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.strict_limits()
    for n in range(3):
        await bot.send_message(CUSTOMER, f"burst {n}")
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(CUSTOMER, "one too many")
    assert err.value.retry_after == dtm.timedelta(seconds=1)
    clock.now += 1.0
    await bot.send_message(CUSTOMER, "a second later")
    with pytest.raises(RetryAfter):
        await bot.send_message(CUSTOMER, "too soon again")
    assert fake.too_many_requests == 2
    assert fake.limit_hits == [{"method": "sendMessage", "chat_id": CUSTOMER, "retry_after": 1}] * 2
    assert len(fake.sent) == 4  # refused sends leave nothing behind


async def test_strict_limits_thirty_chats_a_second_and_twenty_per_group_a_minute(
    fake: FakeTelegram, bot: Bot, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.strict_limits(SendLimits(per_second=30, group_per_minute=20))
    for uid in range(6000, 6031):
        fake.user(uid, f"Customer {uid}")
    for uid in range(6000, 6030):
        await bot.send_message(uid, "survey")
    with pytest.raises(RetryAfter):
        await bot.send_message(6030, "the 31st in one second")
    clock.now += 1.0
    await bot.send_message(6030, "next second")

    for _ in range(20):
        clock.now += 1.0  # one a second: the per-chat pace is kept, the group budget is not
        await bot.send_message(GROUP, "group message")
    with pytest.raises(RetryAfter) as err:
        clock.now += 1.0
        await bot.send_message(GROUP, "the 21st in a minute")
    assert err.value.retry_after == dtm.timedelta(seconds=40)  # the first of the 20 ages out
    clock.now += 40.0
    await bot.send_message(GROUP, "after the minute")
    assert [hit["chat_id"] for hit in fake.limit_hits] == [6030, GROUP]
    assert fake.too_many_requests == 2


async def test_without_strict_mode_nothing_is_limited(fake: FakeTelegram, bot: Bot) -> None:
    for n in range(40):
        await bot.send_message(CUSTOMER, f"message {n}")
    assert fake.too_many_requests == 0 and len(fake.sent) == 40


@pytest.mark.parametrize("connections", [40, 1])
async def test_webhook_posts_run_side_by_side_up_to_max_connections(
    fake: FakeTelegram, bot: Bot, connections: int
) -> None:
    seen: list[str] = []
    release = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        text = (await request.json())["message"]["text"]
        seen.append(text)
        if text == "slow":
            await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/tg"
    try:
        await bot.set_webhook(url, max_connections=connections)
        fake.send_text(CUSTOMER, "slow")
        fake.send_text(CUSTOMER, "fast")
        if connections > 1:  # the second is posted while the first still waits
            await fake.wait_for(lambda: seen == ["slow", "fast"])
            assert fake.pending_updates and len(fake.webhook_deliveries) == 1
            release.set()
        else:  # one connection: the second waits for the first answer
            await fake.wait_for(lambda: seen == ["slow"])
            release.set()
            await fake.wait_for(lambda: seen == ["slow", "fast"])
        await fake.wait_for(lambda: not fake.pending_updates)
        with pytest.raises(BadRequest, match="max_connections"):
            await bot.set_webhook(url, max_connections=101)
    finally:
        release.set()
        await bot.delete_webhook()
        await runner.cleanup()
