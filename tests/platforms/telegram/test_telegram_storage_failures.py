"""When storage cannot write, Telegram is not told the update arrived (issue 11, "Done when").

Anna's tap comes in through the webhook while the SQLite database cannot be written: the
webhook answers 503, so the fake Bot API posts the tap again and again (as Telegram does);
``/healthz`` says 503 with SQLite's own error, and the log names that error (not the "cannot
rollback" a second ROLLBACK used to put in its place). When the database can write again, the
next retry is taken: the answer is recorded once and Anna gets the next question.

The full disk is real: the database lives on a small tmpfs that a filler file fills up (root
only; skipped otherwise). The read-only variant uses ``PRAGMA query_only`` on the bot's own
connection: a tmpfs cannot be remounted read-only while SQLite holds its files open for
writing (the kernel answers EBUSY), so the database is made read-only from inside instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.web.server import http_app
from tests.fakes.telegram_api import FakeTelegram
from tests.support.disk import fill
from tests.support.telegram_harness import ANNA, World, button, make_settings, running_bot

SECRET = "disk-Secret_1"


@asynccontextmanager
async def serving_webhook(fake: FakeTelegram, flows: Path, disk: Path) -> AsyncIterator[World]:
    """surveybot in webhook mode with its database in ``disk``, behind the HTTP app that
    `surveybot run` serves (the webhook route and /healthz)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/telegram/webhook"
    settings = make_settings(fake, flows, disk / "surveys.db", webhook_url=url, secret=SECRET)
    async with running_bot(fake, settings) as tg:
        app = http_app(tg.svc, [tg.runner])
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await fake.wait_for(lambda: server.started, 10, what="the HTTP server")
            yield tg
        finally:
            server.should_exit = True
            await task


async def healthz(tg: World) -> httpx.Response:
    assert tg.fake.webhook_url is not None
    base = tg.fake.webhook_url.removesuffix("/telegram/webhook")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await client.get("/healthz")


async def story_through_a_storage_failure(
    tg: World,
    caplog: pytest.LogCaptureFixture,
    break_storage: Callable[[], Awaitable[None]],
    repair_storage: Callable[[], Awaitable[None]],
    error: str,
) -> None:
    """Anna starts NPS, storage breaks, she taps 10, storage is repaired."""
    fake, anna = tg.fake, tg.person(ANNA)
    start = anna.says("/start nps")
    question = await anna.receives()
    assert question["text"].startswith("How likely are you to recommend us to a friend")
    await tg.active_session(start)  # its delivery recorded before storage fails
    assert (await healthz(tg)).status_code == 200

    caplog.clear()
    await break_storage()
    tap = fake.tap(fake.users[ANNA], question, button(question, "10"))
    refused = lambda: [s for u, s in fake.webhook_deliveries if u == tap["update_id"]]  # noqa: E731
    await fake.wait_for(lambda: len(refused()) >= 2, 10, what="the tap posted twice")
    assert set(refused()) == {503}  # not acknowledged: Telegram keeps posting it
    assert tap["update_id"] in fake.pending_updates
    sick = await healthz(tg)
    assert sick.status_code == 503, sick.text
    assert error in sick.json()["reason"], sick.json()
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(error in line for line in failures), failures
    assert "cannot rollback" not in caplog.text
    assert anna.nothing_new() and not fake.callback_answers  # the bot has not answered yet

    await repair_storage()
    follow_up = await anna.receives(15)  # the next retry is taken and handled
    assert follow_up["text"] == "We're glad to hear it! What did you like most?"
    # answered 200 once the tap is stored: with its answer, which may reach Anna first
    taken = lambda: fake.webhook_deliveries[-1] == (tap["update_id"], 200)  # noqa: E731
    await fake.wait_for(taken, 10, what="the tap answered 200")
    await fake.wait_for(lambda: not fake.pending_updates, what="the tap confirmed")
    assert [a["callback_query_id"] for a in fake.callback_answers] == [
        tap["callback_query"]["id"]
    ]  # answered once
    assert (await healthz(tg)).status_code == 200
    assert await tg.answers() == [("nps", "score", 10)]  # recorded exactly once


async def test_a_tap_while_the_disk_is_full_is_not_acknowledged_until_space_returns(
    fake: FakeTelegram, flows_dir: Path, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    filler: list[Path] = []

    async def full() -> None:
        filler.append(fill(small_disk))

    async def space_returns() -> None:
        filler.pop().unlink()

    async with serving_webhook(fake, flows_dir, small_disk) as tg:
        await story_through_a_storage_failure(
            tg, caplog, full, space_returns, "database or disk is full"
        )


async def test_a_question_delivered_as_the_disk_fills_does_not_hold_up_the_next_one(
    fake: FakeTelegram, flows_dir: Path, small_disk: Path
) -> None:
    """The disk fills after Telegram took Anna's first question but before the bot could
    record that it went out. When space returns, her tap gets the next question: the
    delivery is recorded then (the chat's next messages wait for it), the first question is
    not sent again after its lease."""
    async with serving_webhook(fake, flows_dir, small_disk) as tg:
        anna = tg.person(ANNA)
        fake.hold_answers("sendMessage")  # Telegram sends it, the bot hears back later
        await tg.active_session(anna.says("/start nps"), sent=False)  # the send is held
        question = await anna.receives()
        filler = fill(small_disk)
        fake.release_answers()  # the bot learns it went out; storage cannot record that
        tap = fake.tap(fake.users[ANNA], question, button(question, "10"))
        refused = lambda: [s for u, s in fake.webhook_deliveries if u == tap["update_id"]]  # noqa: E731
        await fake.wait_for(lambda: len(refused()) >= 2, 10, what="the tap posted twice")

        filler.unlink()
        follow_up = await anna.receives(15)
        assert follow_up["text"] == "We're glad to hear it! What did you like most?"
        assert await tg.answers() == [("nps", "score", 10)]


async def test_a_tap_while_the_database_is_read_only_is_not_acknowledged_until_it_is_writable(
    fake: FakeTelegram, flows_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    disk = tmp_path / "data"
    disk.mkdir()
    async with serving_webhook(fake, flows_dir, disk) as tg:
        conn = tg.svc.storage.conn  # type: ignore[attr-defined]

        async def read_only() -> None:
            await conn.all("PRAGMA query_only = 1")

        async def writable() -> None:
            await conn.all("PRAGMA query_only = 0")

        await story_through_a_storage_failure(
            tg, caplog, read_only, writable, "attempt to write a readonly database"
        )
