"""The fake Telegram Bot API (tests/fakes/telegram_api.py) against the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    RetryAfter,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.fakes.telegram_api import FakeTelegram

CUSTOMER = 5001


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.user(CUSTOMER, "Ann", language_code="lt", username="ann")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as b:
        yield b


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


async def test_get_me_send_and_edit(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "surveybot_test_bot", True)

    msg = await bot.send_message(CUSTOMER, "How likely?", reply_markup=keyboard("0", "10"))
    assert msg.chat.id == CUSTOMER and msg.from_user is not None and msg.from_user.id == me.id
    assert msg.reply_markup is not None
    assert msg.reply_markup.inline_keyboard[0][1].callback_data == "10"
    assert fake.sent[-1]["chat_id"] == CUSTOMER and fake.sent[-1]["message_id"] == msg.message_id
    assert fake.sent[-1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "0"

    edited = await bot.edit_message_text("How likely? — 10", CUSTOMER, msg.message_id)
    assert isinstance(edited, type(msg)) and edited.reply_markup is None  # keyboard removed
    [state] = fake.chat_messages(CUSTOMER)
    assert state["text"] == "How likely? — 10" and "reply_markup" not in state
    assert state["edit_date"] >= state["date"]

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("How likely? — 10", CUSTOMER, msg.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(CUSTOMER, msg.message_id, reply_markup=None)
    with pytest.raises(BadRequest, match=r"(?i)Message to edit not found"):
        await bot.edit_message_text("x", CUSTOMER, 999)
    with pytest.raises(BadRequest, match=r"(?i)Message text is empty"):
        await bot.send_message(CUSTOMER, "  ")
    with pytest.raises(BadRequest, match=r"(?i)Message is too long"):
        await bot.send_message(CUSTOMER, "x" * 4097)
    await bot.send_message(CUSTOMER, "x" * 4096)
    assert [s["message_id"] for s in fake.sent] == [1, 2]


async def test_inline_keyboard_strictness(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(CUSTOMER, "ok", reply_markup=keyboard("a" * 64))
    with pytest.raises(BadRequest, match=r"(?i)Button_data_invalid"):
        await bot.send_message(CUSTOMER, "q", reply_markup=keyboard("a" * 65))
    with pytest.raises(BadRequest, match=r"(?i)Button_data_invalid"):  # 33 chars but 66 bytes
        await bot.send_message(CUSTOMER, "q", reply_markup=keyboard("é" * 33))
    text_only = InlineKeyboardMarkup([[InlineKeyboardButton("no action")]])
    with pytest.raises(BadRequest, match=r"(?i)Text buttons are unallowed"):
        await bot.send_message(CUSTOMER, "q", reply_markup=text_only)
    both = InlineKeyboardButton("t", callback_data="d", url="https://example.com")
    with pytest.raises(BadRequest, match=r"(?i)exactly one"):
        await bot.send_message(CUSTOMER, "q", reply_markup=InlineKeyboardMarkup([[both]]))
    assert len(fake.sent) == 1  # failed sends leave no message behind
    assert [c.status for c in fake.method_calls("sendMessage")] == [200, 400, 400, 400, 400]


async def test_auth_unknown_method_and_chats(fake: FakeTelegram, bot: Bot) -> None:
    wrong = Bot("123456:WRONG", base_url=fake.base_url)
    with pytest.raises(InvalidToken, match=r"(?i)rejected by the server"):
        await wrong.initialize()  # calls getMe
    await wrong.shutdown()
    assert fake.calls[-1].status == 401
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendCarrierPigeon", {"chat_id": CUSTOMER})
    with pytest.raises(BadRequest, match=r"(?i)Chat not found"):
        await bot.send_message(777, "hello?")

    fake.user(6002, "Bob", started=False)
    with pytest.raises(Forbidden, match=r"(?i)bot can't initiate conversation with a user"):
        await bot.send_message(6002, "Survey?")
    fake.send_text(6002, "/start nps")  # writing to the bot starts it
    await bot.send_message(6002, "Survey!")
    fake.users[6002].blocked = True
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(6002, "Still there?")


async def test_long_polling_text_and_callback(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.get_updates(timeout=0) == ()
    assert await bot.get_updates(timeout=dtm.timedelta(seconds=0.3)) == ()  # long poll ran out

    sent = fake.send_text(CUSTOMER, "/start nps")
    [update] = await bot.get_updates(timeout=1)
    assert update.update_id == sent["update_id"] and update.message is not None
    assert update.message.text == "/start nps" and update.message.chat.type == "private"
    assert update.message.from_user is not None and update.message.from_user.language_code == "lt"
    assert update.message.parse_entities(["bot_command"]) == {update.message.entities[0]: "/start"}
    # not confirmed yet -> delivered again; confirmed by offset -> gone
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()

    question = await bot.send_message(CUSTOMER, "Score?", reply_markup=keyboard("s:9", "s:10"))

    async def tap_later() -> None:
        await asyncio.sleep(0.1)
        fake.tap(CUSTOMER, question.to_dict(), "s:9")

    tapper = asyncio.create_task(tap_later())
    # a 60 s long poll that must wake on the tap: the guard fails the test if it does not
    [tap] = await asyncio.wait_for(
        bot.get_updates(offset=update.update_id + 1, timeout=60, read_timeout=70), 30
    )
    await tapper
    query = tap.callback_query
    assert query is not None and query.data == "s:9" and query.from_user.id == CUSTOMER
    assert query.message is not None and query.message.message_id == question.message_id

    assert await bot.answer_callback_query(query.id, text="Saved")
    with pytest.raises(BadRequest, match=r"(?i)Query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(BadRequest, match=r"(?i)Query is too old"):
        await bot.answer_callback_query("12345")
    assert fake.callback_answers == [
        {"callback_query_id": query.id, "text": "Saved", "show_alert": False}
    ]
    assert list(fake.callback_latency) == [query.id]  # measured for benchmarks
    with pytest.raises(ValueError, match=r"(?i)no button"):
        fake.tap(CUSTOMER, question.message_id, "s:11")

    # a redelivered update comes back with its old id although the offset moved past it
    assert await bot.get_updates(offset=tap.update_id + 1, timeout=0) == ()
    fake.redeliver(tap.update_id)
    [again] = await bot.get_updates(offset=tap.update_id + 1, timeout=1)
    assert again.update_id == tap.update_id and again.callback_query is not None
    assert await bot.get_updates(offset=tap.update_id + 1, timeout=0) == ()


async def test_group_reply_and_html(fake: FakeTelegram, bot: Bot) -> None:
    fake.group(-1001234567890, "Support")
    fake.user(7003, "Staff")
    customer_msg = fake.send_text(CUSTOMER, "my order is late", chat=-1001234567890)
    fake.send_text(7003, "/survey@surveybot_test_bot csat", chat=-1001234567890,
                   reply_to_message_id=customer_msg["message"]["message_id"])  # fmt: skip
    updates = await bot.get_updates(timeout=0)
    staff = updates[1].message
    assert staff is not None and staff.chat.type == "supergroup"
    assert staff.reply_to_message is not None and staff.reply_to_message.text == "my order is late"
    assert staff.entities[0].length == len("/survey@surveybot_test_bot")

    reply = await bot.send_message(
        -1001234567890, "<b>Ann</b> &amp; co, rate us",
        parse_mode="HTML", reply_parameters=ReplyParameters(customer_msg["message"]["message_id"]),
    )  # fmt: skip
    assert reply.text == "Ann & co, rate us"
    assert reply.reply_to_message is not None and reply.reply_to_message.from_user is not None
    assert reply.reply_to_message.from_user.id == CUSTOMER
    with pytest.raises(BadRequest, match=r"(?i)Unsupported start tag"):
        await bot.send_message(-1001234567890, "Hi <Ann>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)Message to be replied not found"):
        await bot.send_message(CUSTOMER, "x", reply_parameters=ReplyParameters(999))
    assert len(fake.chat_messages(-1001234567890)) == 3
    assert len(fake.chat_messages(-1001234567890, bot_only=True)) == 1


async def test_flood_control_and_commands(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22.2+: retry_after as a timedelta
    fake.fail_next("sendMessage", n=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(RetryAfter, match="Flood control exceeded") as err:
            await bot.send_message(CUSTOMER, "hello")
        assert err.value.retry_after == dtm.timedelta(seconds=3)
    await bot.send_message(CUSTOMER, "hello")
    assert [c.status for c in fake.method_calls("sendMessage")] == [429, 429, 200]
    assert len(fake.sent) == 1

    await bot.set_my_commands([BotCommand("start", "Start a survey"), ("survey", "Send one")])
    await bot.set_my_commands([("start", "Pradėti")], language_code="lt")
    assert fake.commands == [
        {"command": "start", "description": "Start a survey"},
        {"command": "survey", "description": "Send one"},
    ]
    assert [c.description for c in await bot.get_my_commands(language_code="lt")] == ["Pradėti"]
    with pytest.raises(BadRequest, match=r"(?i)Bot_command_invalid"):
        await bot.set_my_commands([("Bad-Command", "x")])


async def test_webhook_delivery_with_secret(fake: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         await request.json()))  # fmt: skip
        return web.Response(status=200 if len(received) > 1 else 500)

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        fake.send_text(CUSTOMER, "queued before the webhook was set")
        with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
            await bot.set_webhook(f"http://127.0.0.1:{port}/tg", secret_token="no spaces")
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/tg", secret_token="s3cr3t-Tok")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) == 2)
        assert [s for _, s in fake.webhook_deliveries] == [500, 200]  # retried after the 500
        assert all(secret == "s3cr3t-Tok" for secret, _ in received)
        update = Update.de_json(received[-1][1], bot)
        assert update.message is not None
        assert update.message.text == "queued before the webhook was set"

        with pytest.raises(Conflict, match=r"(?i)webhook is active"):
            await bot.get_updates(timeout=0)
        info = await bot.get_webhook_info()
        assert info.url.endswith("/tg") and info.pending_update_count == 0

        question = await bot.send_message(CUSTOMER, "?", reply_markup=keyboard("y"))
        tap_update = fake.tap(CUSTOMER, question.to_dict(), "y")
        await fake.wait_for(lambda: len(received) == 3)
        assert received[-1][1] == tap_update and fake.webhook_deliveries[-1][1] == 200

        assert await bot.delete_webhook()
        fake.send_text(CUSTOMER, "polling again")
        [polled] = await bot.get_updates(timeout=1)
        assert polled.message is not None and polled.message.text == "polling again"
    finally:
        await runner.cleanup()


async def test_application_polling_end_to_end(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None and context.args
        await update.effective_chat.send_message(
            f"flow={context.args[0]}? Rate us", reply_markup=keyboard("r:1", "r:5")
        )

    async def tapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and isinstance(query.message, Message)
        await query.answer()
        await query.edit_message_text(f"{query.message.text} — {query.data}")

    app = Application.builder().token(fake.token).base_url(fake.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(tapped))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            fake.send_text(CUSTOMER, "/start nps")
            question = await fake.wait_for(lambda: fake.last_sent(CUSTOMER))
            assert question["text"] == "flow=nps? Rate us"
            fake.tap(CUSTOMER, question, "r:5")
            await fake.wait_for(lambda: fake.callback_answers and fake.edits)
            [state] = fake.chat_messages(CUSTOMER, bot_only=True)
            assert state["text"] == "flow=nps? Rate us — r:5" and "reply_markup" not in state
        finally:
            await app.updater.stop()
            await app.stop()
    methods = [c.method for c in fake.calls]
    assert methods[:2] == ["getMe", "deleteWebhook"] and "getUpdates" in methods
    assert all(c.status == 200 for c in fake.calls if c.method != "getUpdates")


async def test_forum_topics_keep_a_message_in_its_topic(fake: FakeTelegram, bot: Bot) -> None:
    forum = -1009876543210
    fake.group(forum, "Support desk", forum=True)
    fake.topic(forum, 7, "Billing")
    fake.user(7003, "Staff")
    asked = fake.send_text(CUSTOMER, "my invoice is wrong", chat=forum, thread=7)
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.message_thread_id == 7
    assert update.message.is_topic_message and asked["message"]["message_thread_id"] == 7
    reply = await bot.send_message(forum, "Rate us", message_thread_id=7)
    assert reply.message_thread_id == 7 and fake.sent[-1]["message_thread_id"] == 7
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.send_message(forum, "lost", message_thread_id=99)
    with pytest.raises(ValueError, match="no topic"):
        fake.send_text(CUSTOMER, "x", chat=forum, thread=99)
