"""The restart after a crash: `surveybot run` (in process, Telegram polling, SQLite) finds Anna's
``/start nps`` still in the inbox, stored by the process that died. While Telegram has not yet
answered getMe (PTB's Bot is not initialized), the event waits untouched; once the platform is
up it is handled on its first attempt and Anna gets her question. Before the inbox worker
waited for the platforms, the event failed with "ExtBot is not properly initialized" and used
up its attempts while the platform started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
from pathlib import Path

from bot.app import services
from bot.platforms.telegram.raw import raw_event
from bot.run import run
from bot.settings import ServerConfig
from storage.base import InboxEvent, utcnow
from tests.conftest import SHIPPED_FLOWS
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram_harness import ANNA, Person, add_people, make_settings

WAIT = 15.0  # seconds anything may take on a loaded machine
STARTING = 2.0  # seconds the platform takes to start (longer than the inbox worker's 1 s poll)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def inbox_row(db: Path, event_id: str) -> tuple[str, int, str | None]:
    """(status, attempts, last_error) of one stored event, read beside the running bot."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        row = conn.execute(
            "SELECT status, attempts, last_error FROM inbox WHERE event_id = ?", (event_id,)
        ).fetchone()
    assert row is not None, f"{event_id} is not in the inbox"
    return str(row[0]), int(row[1]), row[2]


async def test_an_event_left_in_the_inbox_waits_for_telegram_and_is_handled_once(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as fake:
        add_people(fake)
        shutil.copytree(SHIPPED_FLOWS, tmp_path / "flows")
        db = tmp_path / "surveys.db"
        settings = make_settings(fake, tmp_path / "flows", db).model_copy(
            update={"server": ServerConfig(host="127.0.0.1", port=free_port())}
        )
        anna = Person(fake, fake.users[ANNA], ANNA)
        update = anna.says("/start nps")  # Telegram still holds it too: the offset died unsent
        event = raw_event(update)
        async with services(settings) as svc:  # what the process that died had stored
            await svc.storage.inbox_put([InboxEvent(
                platform=event.platform, event_id=event.event_id, key=event.key,
                payload=event.body, received_at=utcnow(), user_id=event.user_id,
            )])  # fmt: skip

        fake.hold_answers("getMe")  # Telegram is slow to answer the restarted bot
        bot = asyncio.create_task(run(settings))
        try:
            await asyncio.sleep(STARTING)
            assert inbox_row(db, event.event_id) == ("pending", 0, None)
            assert fake.chat_messages(ANNA, bot_only=True) == []

            fake.release_answers()
            question = await anna.receives(WAIT)
            assert question["text"].startswith("How likely are you to recommend us")
            status, attempts, error = inbox_row(db, event.event_id)
            assert (status, attempts, error) == ("done", 1, None)
            assert len(fake.chat_messages(ANNA, bot_only=True)) == 1  # asked once
        finally:
            fake.release_answers()
            os.kill(os.getpid(), signal.SIGTERM)  # `surveybot run` stops on SIGTERM
            await asyncio.wait_for(bot, WAIT)
