"""Exactly once across duplicated updates and restarts, flood control, the webhook with its
secret token, and the commands registered at start."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from bot.app import services
from bot.platforms.telegram.runner import build_runner
from bot.settings import ConfigError, Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram_harness import (
    ANNA,
    ELENI,
    STAFF,
    World,
    button,
    labels,
    make_settings,
    running_bot,
)

# PTB's RetryAfter reads its own deprecated int retry_after while it is built
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_a_redelivered_tap_and_start_record_once(tg: World) -> None:
    anna, fake = tg.person(ANNA), tg.fake
    start = anna.says("/start csat")
    question = await anna.receives()
    tap = fake.tap(fake.users[ANNA], question, button(question, "No"))
    follow_up = await anna.receives()
    assert follow_up["text"].startswith("We're sorry to hear that.")

    fake.redeliver(tap["update_id"])  # Telegram sends the tap again (offset not confirmed)
    fake.redeliver(start["update_id"])  # ... and the /start
    await fake.wait_for(lambda: not fake.pending_updates, what="redeliveries confirmed")
    anna.says("Nobody answered for two days")  # handled after them: Anna's events in order
    assert (await anna.receives())["text"].startswith("Thank you for your feedback!")
    assert len(fake.method_calls("answerCallbackQuery")) == 1  # the inbox knew the tap
    assert await tg.answers() == [
        ("csat", "satisfied", 0), ("csat", "what_went_wrong", "Nobody answered for two days")
    ]  # fmt: skip
    questions = [m for m in fake.chat_messages(ANNA, bot_only=True) if "Were you" in m["text"]]
    assert len(questions) == 1  # the redelivered /start started nothing


async def test_a_redelivered_typed_answer_is_not_taken_for_the_next_answer(tg: World) -> None:
    eleni, fake = tg.person(ELENI), tg.fake
    eleni.says("/start nps")
    await eleni.receives()
    typed = eleni.says("9")
    assert (await eleni.receives())["text"] == "Χαιρόμαστε πολύ! Τι σας άρεσε περισσότερο;"
    fake.redeliver(typed["update_id"])  # "9" again, while the comment question is open
    eleni.says("Η ταχύτητα")  # handled after the redelivered update (one user, in order)
    thanks = await eleni.receives()  # nothing was said about the redelivered "9"
    assert thanks["text"] == "Σας ευχαριστούμε που αφιερώσατε χρόνο για να απαντήσετε!"
    assert await tg.answers() == [("nps", "score", 9), ("nps", "promoter_reason", "Η ταχύτητα")]


async def test_a_restart_mid_survey_resumes_and_the_old_buttons_still_work(
    fake: FakeTelegram, settings: Settings
) -> None:
    async with running_bot(fake, settings) as before:
        anna = before.person(ANNA)
        anna.says("/start nps")
        score = await anna.receives()
    # the process stopped; a new one starts on the same database
    async with running_bot(fake, settings) as after:
        anna = after.person(ANNA)
        anna.read = 1
        await anna.taps(score, "8")  # the keyboard sent by the previous process
        why = await anna.receives()
        assert why["text"] == "What would make you rate us higher?"
        anna.says("Cheaper shipping")
        assert (await anna.receives())["text"] == "Thank you for taking the time to answer!"
        assert await after.answers() == [
            ("nps", "score", 8), ("nps", "passive_reason", "Cheaper shipping")
        ]  # fmt: skip
    assert [c.method for c in fake.calls].count("deleteWebhook") == 2  # polling, twice


async def test_flood_control_429_is_waited_out_and_the_question_arrives_once(tg: World) -> None:
    anna, fake = tg.person(ANNA), tg.fake
    fake.fail_next("sendMessage", retry_after=1)
    anna.says("/start csat")
    question = await anna.receives()
    assert [c.status for c in fake.method_calls("sendMessage")] == [429, 200]
    await anna.taps(question, "Yes")
    await anna.receives()
    assert len(fake.sent) == 2 and await tg.answers() == [("csat", "satisfied", 1)]


async def test_a_long_flood_wait_keeps_the_question_owed_and_the_sender_sends_it_after(
    tg: World,
) -> None:
    maria, anna, fake = tg.person(STAFF), tg.person(ANNA), tg.fake
    fake.fail_next("sendMessage", n=4, retry_after=1)  # more than the adapter retries
    maria.says(f"/survey ces {ANNA}")
    question = await anna.receives(within=15)  # the sender's retry, after retry_after
    assert labels(question) == [["1", "2", "3", "4", "5", "6", "7"]]
    told = await maria.receives(within=15)  # staff hear once it went out
    assert told["text"] == f"Survey “ces” sent to {ANNA}."
    await anna.taps(question, "2")
    assert (await anna.receives())["text"] == "Is there anything else you would like to add?"
    statuses = [c.status for c in fake.method_calls("sendMessage")]
    assert statuses[:4] == [429] * 4 and 429 not in statuses[4:]
    assert await tg.answers() == [("ces", "effort", 2)]


async def test_commands_are_registered_at_start_in_every_language(tg: World) -> None:
    assert [c["command"] for c in tg.fake.commands] == ["start", "skip", "survey", "help"]
    by_language = {
        c.params.get("language_code"): json.loads(c.params["commands"])
        for c in tg.fake.method_calls("setMyCommands")
    }
    assert set(by_language) == {None, "el", "lt"}
    assert by_language["el"][1] == {
        "command": "skip",
        "description": "Παράλειψη προαιρετικής ερώτησης",
    }
    assert by_language["lt"][1] == {
        "command": "skip",
        "description": "Praleisti neprivalomą klausimą",
    }


@asynccontextmanager
async def serving(router_app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    config = uvicorn.Config(router_app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.wait_for(_started(server), 10)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> None:
    while not server.started:  # noqa: ASYNC110  (uvicorn offers no event)
        await asyncio.sleep(0.01)


async def test_webhook_mode_checks_the_secret_token_and_answers_surveys(
    fake: FakeTelegram, flows_dir: Path, tmp_path: Path
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/telegram/webhook"
    settings = make_settings(fake, flows_dir, tmp_path / "s.db", webhook_url=url,
                             secret="s3cr3t-Tok_1")  # fmt: skip
    async with running_bot(fake, settings) as tg:
        router = tg.runner.router()
        assert router is not None
        app = FastAPI()
        app.include_router(router)
        [call] = fake.method_calls("setWebhook")
        assert (call.params["url"], call.params["secret_token"]) == (url, "s3cr3t-Tok_1")
        async with serving(app, sock), httpx.AsyncClient() as client:
            update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start csat",
                      "chat": {"id": ANNA, "type": "private"}}}  # fmt: skip
            assert (await client.post(url, json=update)).status_code == 403
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
            assert (await client.post(url, json=update, headers=wrong)).status_code == 403
            right = {"X-Telegram-Bot-Api-Secret-Token": "s3cr3t-Tok_1"}
            garbage = await client.post(url, content=b"[1, 2", headers=right)
            assert garbage.status_code == 200  # logged and ignored: Telegram must not retry it

            eleni = tg.person(ELENI)  # through Telegram's webhook delivery, with the secret
            start = eleni.says("/start csat")
            question = await eleni.receives()
            assert question["text"] == "Μείνατε ικανοποιημένοι από τη βοήθεια που λάβατε;"
            tap = fake.tap(fake.users[ELENI], question, button(question, "Όχι"))
            await eleni.receives()
            fake.redeliver(tap["update_id"])  # a webhook retry of the same update
            await fake.wait_for(lambda: len(fake.webhook_deliveries) == 3)
            eleni.says("Άργησε πολύ")
            assert (await eleni.receives())["text"].startswith("Σας ευχαριστούμε")
        assert await tg.answers() == [("csat", "satisfied", 0),
                                      ("csat", "what_went_wrong", "Άργησε πολύ")]  # fmt: skip
        assert {s for _, s in fake.webhook_deliveries} == {200}
        assert fake.webhook_secret == "s3cr3t-Tok_1" and start["update_id"]


async def test_a_wrong_token_or_a_webhook_without_secret_stops_start_up_clearly(
    fake: FakeTelegram, flows_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(fake, flows_dir, tmp_path / "s.db")
    wrong = settings.model_copy(update={"telegram_token": SecretStr("123456:WRONG")})
    async with services(wrong) as svc:
        runner = build_runner(svc)
        with pytest.raises(ConfigError, match="SURVEYBOT_TELEGRAM_TOKEN was rejected") as err:
            await runner.start()
        assert "WRONG" not in str(err.value)  # the token itself never reaches the logs
        await runner.stop()
    webhook = make_settings(fake, flows_dir, tmp_path / "s.db", webhook_url="https://x/hook")
    async with services(webhook) as svc:
        with pytest.raises(ConfigError, match="SURVEYBOT_TELEGRAM_WEBHOOK_SECRET"):
            build_runner(svc)
    assert fake.sent == [] and fake.webhook_url is None
