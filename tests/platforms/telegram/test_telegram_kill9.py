"""kill -9 under load on Telegram (issue 11, "Done when"), polling and webhook: 300 customers,
30 at a time, open the NPS deep link (``/start nps``), tap a score, type a comment and wait for
the thanks, while `surveybot run` (SQLite) is killed with SIGKILL a third of the way through and
started again. Telegram keeps every update the bot did not confirm (getUpdates offset, webhook
answered 200) and nobody sends anything twice; afterwards no acknowledged answer is lost or
doubled, every customer got the thanks, and `surveybot export` holds exactly what customers
were told. The harness and its bounds: tests/support/crash_load.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.platforms.telegram.test_telegram_run import free_port
from tests.support.crash_load import JSON, Installation, crowd, load_with_kill_9, nothing_lost
from tests.support.telegram_harness import button, labels

CUSTOMERS, CONCURRENCY = 300, 30
KILL_AFTER = 200  # acknowledged answers (of 600): a third of the way
SECRET = "kill9-Secret_1"


@dataclass
class TelegramCustomers:
    """Customers in their private chats with the bot, through the fake Bot API."""

    fake: FakeTelegram
    mode: str
    name: str = "telegram"

    def serving(self) -> int:
        # polling starts with deleteWebhook, webhook mode with setWebhook
        return len(self.fake.method_calls("setWebhook" if self.mode == "webhook" else
                                          "deleteWebhook"))  # fmt: skip

    async def start(self, who: str) -> None:
        self.fake.send_text(int(who), "/start nps")

    def question(self, who: str) -> JSON | None:
        return next((m for m in self._chat(who) if labels(m)), None)

    async def tap(self, who: str, question: JSON, label: str) -> None:
        self.fake.tap(int(who), question, button(question, label))

    async def type(self, who: str, text: str) -> None:
        self.fake.send_text(int(who), text)

    def texts(self, who: str) -> list[str]:
        return [str(m["text"]) for m in self._chat(who)]

    def _chat(self, who: str) -> list[JSON]:
        return self.fake.chat_messages(int(who), bot_only=True)


@pytest.mark.parametrize(
    ("mode", "handle_first"),
    [("polling", 0.25), ("webhook", 0.25), ("polling", 0)],
    ids=["polling", "webhook", "polling-stored-first"],
)
async def test_kill_9_under_load_loses_strands_and_doubles_nobody(
    tmp_path: Path, mode: str, handle_first: float
) -> None:
    """By default a customer's event is handled first and stored with its answer; with
    ``inbox.handle_first: 0`` every event is stored first, then handled by the worker."""
    async with FakeTelegram() as fake:
        ids = [str(8_100_001 + n) for n in range(CUSTOMERS)]
        for who in ids:
            fake.user(int(who), f"Customer {who}", language_code="en")
        port = free_port()
        hook = f"{{mode: webhook, webhook_url: 'http://127.0.0.1:{port}/telegram/webhook'}}"
        env = {"SURVEYBOT_TELEGRAM_TOKEN": fake.token,
               "SURVEYBOT_TELEGRAM__API_BASE_URL": fake.base_url,
               # this fake enforces no overall limit: 1,200 messages need not take 40 s
               "SURVEYBOT_TELEGRAM__RATE_LIMIT__MESSAGES_PER_SECOND": "0"}  # fmt: skip
        if mode == "webhook":
            env["SURVEYBOT_TELEGRAM_WEBHOOK_SECRET"] = SECRET
        platform = TelegramCustomers(fake, mode, name=f"telegram {mode}")
        site = Installation.create(
            tmp_path, platform,
            f"telegram: {hook if mode == 'webhook' else '{mode: polling}'}\n"
            f"server: {{host: 127.0.0.1, port: {port}}}\n"
            # a crashed process's claims come back after 5 s, not 15: a shorter test
            f"inbox: {{lease: 5s, handle_first: {handle_first}}}\n"
            "surveys: {remind_after: null}\n",
            env,
        )  # fmt: skip
        customers = crowd(ids)
        figures = await load_with_kill_9(site, customers, CONCURRENCY, KILL_AFTER)
        rows = await site.export()
        figures.stored = len(rows)
        print(figures)
        nothing_lost(site, customers, rows)
        assert fake.pending_updates == []  # everything confirmed in the end
