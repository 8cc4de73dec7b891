"""Shared pieces of the Telegram end-to-end tests: the real python-telegram-bot application
(bot/adapters/telegram.py) against the fake Bot API (tests/fakes/telegram_api.py), on SQLite in
tmp_path with the shipped flows plus a small test flow (rating 1–5 and a choice).

People act through :class:`Person` ("Anna taps 9", "Anna types ναι") and read what the bot
sent them; every wait is ``fake.wait_for`` on something observable, never a sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import Services, services
from bot.platforms.telegram.runner import TelegramRunner, build_runner
from bot.settings import Settings, StaffConfig, StorageConfig, TelegramConfig
from storage.base import SessionRecord
from tests.fakes.telegram_api import FakeTelegram, FakeUser

JSONDict = dict[str, Any]
STAFF, ANNA, ELENI, RASA, BOB, DMITRI = 9001, 5001, 5002, 5003, 5004, 5005
GROUP = -1001234567890

VISIT_FLOW = """\
id: visit
name: Store visit
locales: [en, el, lt]
questions:
  - id: rating
    type: rating
    text: {en: "How was your visit?", el: "Πώς ήταν η επίσκεψή σας;", lt: "Kaip sekėsi?"}
  - id: channel
    type: choice
    text: {en: "How did you find us?", el: "Πώς μας βρήκατε;", lt: "Kaip mus radote?"}
    options:
      - {id: search, text: {en: "Search", el: "Αναζήτηση", lt: "Paieška"}}
      - {id: friend, text: {en: "A friend", el: "Ένας φίλος", lt: "Draugas"}}
      - {id: ad, text: {en: "An ad", el: "Διαφήμιση", lt: "Reklama"}}
"""


def add_people(fake: FakeTelegram) -> None:
    fake.user(STAFF, "Maria", language_code="en")
    fake.user(ANNA, "Anna", language_code="en")
    fake.user(ELENI, "Eleni", language_code="el")
    fake.user(RASA, "Rasa", language_code="lt")
    fake.user(BOB, "Bob", language_code="en")
    fake.user(DMITRI, "Dmitri", language_code="lt", started=False)
    fake.group(GROUP, "Support")


def make_settings(
    fake: FakeTelegram,
    flows_dir: Path,
    db: Path,
    *,
    webhook_url: str | None = None,
    secret: str | None = None,
) -> Settings:
    (flows_dir / "visit.yaml").write_text(VISIT_FLOW, encoding="utf-8")
    return Settings(
        flows_dir=flows_dir,
        storage=StorageConfig(url=f"sqlite:///{db}"),
        staff=StaffConfig(telegram=[STAFF]),
        telegram=TelegramConfig(
            api_base_url=fake.base_url,
            mode="webhook" if webhook_url else "polling",
            webhook_url=webhook_url,
        ),
        telegram_token=SecretStr(fake.token),
        telegram_webhook_secret=SecretStr(secret) if secret else None,
    )


@dataclass
class World:
    fake: FakeTelegram
    svc: Services
    runner: TelegramRunner

    def person(self, user_id: int, chat: int | None = None) -> Person:
        return Person(self.fake, self.fake.users[user_id], chat if chat is not None else user_id)

    async def active_session(
        self, update: JSONDict, within: float = 5.0, *, sent: bool = True
    ) -> SessionRecord:
        """The survey a command update started, once it is active (its question owed) and,
        with ``sent``, its question's delivery recorded (``sent_at``)."""
        key = f"tg-update:{update['update_id']}"
        deadline = time.monotonic() + within
        while True:
            session = await self.svc.storage.session_by_key(key)
            # active from the moment its question is owed; sent_at once the send is recorded
            if session and session.status == "active" and (session.sent_at or not sent):
                return session
            if time.monotonic() > deadline:
                raise AssertionError(f"no active session for {key}: {session}")
            await asyncio.sleep(0.01)

    async def answers(self) -> list[tuple[str, str, object]]:
        """(flow, question, value or text) of every recorded answer, oldest first."""
        return [
            (r.flow_id, r.question_id, r.value if r.text is None else r.text)
            async for r in self.svc.storage.export_rows()
        ]


@asynccontextmanager
async def running_bot(fake: FakeTelegram, settings: Settings) -> AsyncIterator[World]:
    """What `surveybot run` does for Telegram: services, the runner, its adapter joined."""
    async with services(settings) as svc:
        runner = build_runner(svc)
        svc.runtime.adapters["telegram"] = runner.adapter
        await runner.start()
        svc.inbox.start()
        assert svc.sender is not None
        svc.sender.start()
        try:
            yield World(fake, svc, runner)
        finally:
            await runner.stop()
            await svc.inbox.stop()
            await svc.sender.stop()


def labels(message: JSONDict) -> list[list[str]]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [[button["text"] for button in row] for row in rows]


def button(message: JSONDict, label: str) -> str:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    for row in rows:
        for b in row:
            if b["text"] == label:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {labels(message)}")


@dataclass
class Person:
    """A Telegram user in one chat (their private chat unless ``chat``)."""

    fake: FakeTelegram
    user: FakeUser
    chat: int
    read: int = field(default=0)  # bot messages in this chat already looked at

    def _inbox(self) -> list[JSONDict]:
        return [s for s in self.fake.sent if s["chat_id"] == self.chat]

    async def receives(self, within: float = 5.0) -> JSONDict:
        """The next message the bot sends to this chat."""
        new = await self.fake.wait_for(lambda: self._inbox()[self.read :], within)
        self.read += 1
        return dict(new[0])

    def caught_up(self) -> Person:
        """Treat what the chat holds so far as read (someone else's turn in a group)."""
        self.read = len(self._inbox())
        return self

    def nothing_new(self) -> bool:
        return not self._inbox()[self.read :]

    def says(self, text: str, reply_to: int | None = None) -> JSONDict:
        group = None if self.chat == self.user.id else self.chat
        return self.fake.send_text(self.user, text, chat=group, reply_to_message_id=reply_to)

    async def taps(self, message: JSONDict, label_or_data: str, *, strict: bool = True) -> JSONDict:
        """Tap a button (by label, or raw callback data with strict=False); returns the
        callback answer once the bot gave it (the tap has been handled by then)."""
        data = button(message, label_or_data) if strict else label_or_data
        update = self.fake.tap(self.user, message, data, strict=strict)
        query_id = update["callback_query"]["id"]
        return dict(
            await self.fake.wait_for(
                lambda: next(
                    (a for a in self.fake.callback_answers if a["callback_query_id"] == query_id),
                    None,
                )
            )
        )

    def message_now(self, message: JSONDict) -> JSONDict:
        """A bot message as the chat shows it now (edits applied)."""
        current = {m["message_id"]: m for m in self.fake.chat_messages(self.chat)}
        return current[message["message_id"]]
