"""Detractor alerts end to end: surveybot with both platforms connected, as `surveybot run`
wires it (services, both runners, the inbox worker and the sender), against the fake Bot API
and the fake Slack (Socket Mode) on 127.0.0.1. Customers answer on Telegram
(:class:`tests.support.telegram_harness.Person`); support staff work in the Slack staff
channel ``C0STAFF`` or in a Telegram group.

Every step waits on something people can see (a message, an edit, an ephemeral note, a
callback answer), never on the clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import Services, alert_problems, services
from bot.conversation.alerts import AlertRule
from bot.conversation.webhooks import Endpoint, WebhooksConfig
from bot.run import platform_runners
from bot.settings import Settings, SlackConfig, StaffConfig, StorageConfig, TelegramConfig
from storage.base import Followup
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support import slack_support, telegram_harness
from tests.support.slack_support import People, action_id_of

JSON = dict[str, Any]
STAFF_CHANNEL = "C0STAFF"
LEO = "U0LEO"  # a second support lead on Slack
FORUM = -1009876543210  # a Telegram forum supergroup of the support team
ALERTS_TOPIC = 7


@dataclass
class World:
    telegram: FakeTelegram
    slack: FakeSlack
    svc: Services
    staff_side: People  # what people do in Slack

    def customer(self, user_id: int) -> telegram_harness.Person:
        return telegram_harness.Person(self.telegram, self.telegram.users[user_id], user_id)

    async def followups(self) -> list[Followup]:
        return await self.svc.storage.followups()

    async def webhook_events(self) -> list[str]:
        rows = await self.svc.storage.outbox_recent(lane="webhook")
        return [r.body for r in reversed(rows)]

    # the Slack staff channel ---------------------------------------------------------------
    def slack_alerts(self) -> list[JSON]:
        return self.slack.bot_messages(STAFF_CHANNEL)

    async def slack_alert_shows(self, check: Callable[[str], bool], what: str) -> JSON:
        """The channel's one alert, once its text passes ``check``."""

        def ready() -> JSON | None:
            alerts = self.slack_alerts()
            return alerts[0] if len(alerts) == 1 and check(alerts[0]["text"]) else None

        return dict(await self.slack.wait_for(ready, what=what))

    async def press_in_slack(self, user: str, label: str) -> None:
        [alert] = self.slack_alerts()
        await self.staff_side.click(user, alert, action_id_of(alert, label))


@asynccontextmanager
async def alert_world(
    tmp_path: Path, flows_dir: Path, alerts: dict[str, AlertRule], **extra: Any
) -> AsyncIterator[World]:
    async with FakeTelegram() as telegram, FakeSlack() as slack:
        telegram_harness.add_people(telegram)
        telegram.group(FORUM, "Support team", forum=True)
        telegram.topic(FORUM, ALERTS_TOPIC, "Alerts")
        slack_support.populate(slack)
        slack.user(LEO, "leo", locale="en-GB")
        settings = Settings(
            flows_dir=flows_dir,
            storage=StorageConfig(url=f"sqlite:///{tmp_path / 'surveys.db'}"),
            staff=StaffConfig(telegram=[telegram_harness.STAFF],
                              slack=[slack_support.STAFF, LEO]),
            telegram=TelegramConfig(api_base_url=telegram.base_url),
            slack=SlackConfig(mode="socket", api_base_url=slack.base_url),
            telegram_token=SecretStr(telegram.token),
            slack_bot_token=SecretStr(slack.bot_token),
            slack_app_token=SecretStr(slack.app_token),
            alerts=alerts,
            **extra,
        )  # fmt: skip
        async with services(settings) as svc:
            assert alert_problems(svc) == []
            runners = platform_runners(svc)
            assert svc.sender is not None
            svc.inbox.start()
            svc.sender.start()
            for runner in runners:
                await runner.start()
            try:
                await slack.wait_for(lambda: slack.connected, what="Socket Mode connection")
                yield World(telegram, slack, svc, People(slack, "socket"))
            finally:
                for runner in runners:
                    await runner.stop()
                await svc.inbox.stop()
                await svc.sender.stop()


def crm_webhook() -> WebhooksConfig:
    """An endpoint that wants follow-up changes (nothing listens: the rows are what counts)."""
    return WebhooksConfig(endpoints={"crm": Endpoint(url="http://127.0.0.1:9/in",
                                                     events=["followup.updated"])})  # fmt: skip
