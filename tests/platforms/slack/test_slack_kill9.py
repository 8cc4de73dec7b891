"""kill -9 under load on Slack Socket Mode (issue 11, "Done when"): staff send the NPS survey to
300 customers with ``/survey nps @customer``, 30 at a time; each customer taps a score in the
DM, types a comment and waits for the thanks, while `surveybot run` (SQLite) is killed with
SIGKILL a third of the way through and started again. Afterwards no acknowledged answer is lost
or doubled, every customer got the thanks, and `surveybot export` holds exactly what customers
were told. The harness and its bounds: tests/support/crash_load.py.

Slack redelivers an event (a typed comment) that was not acknowledged within 3 s, also to the
restarted app. A slash command or a click it does not redeliver: the person sees Slack's error
("operation_timeout") instead, and does it again, as people do when Slack says it failed; how
often that happened is printed with the figures. Nobody repeats anything that was
acknowledged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.fakes.slack_api import FakeSlack
from tests.platforms.slack.test_slack_run import free_port
from tests.support.crash_load import JSON, STEP, Installation, crowd, load_with_kill_9, nothing_lost
from tests.support.slack_support import STAFF, action_id_of, buttons_of

CUSTOMERS, CONCURRENCY = 300, 30
KILL_AFTER = 200  # acknowledged answers (of 600): a third of the way


@dataclass
class SlackCustomers:
    """Customers in their DMs with the bot, and the staff member who sends them the survey."""

    fake: FakeSlack
    name: str = "slack socket"
    repeated: int = 0  # commands and clicks Slack reported failed, done again

    def serving(self) -> int:
        connections = sum(1 for c in self.fake.calls if c.method == "apps.connections.open")
        return connections if self.fake.connected else 0

    async def start(self, who: str) -> None:
        await self._until_acknowledged(lambda: self.fake.slash_command(STAFF, f"nps <@{who}>"))

    def question(self, who: str) -> JSON | None:
        return next((m for m in self._dm(who) if buttons_of(m)), None)

    async def tap(self, who: str, question: JSON, label: str) -> None:
        action = action_id_of(question, label)

        def still_asked() -> bool:  # the first click may have been handled after all
            now = self.fake.message(question["channel"], question["ts"]) or {}
            return any(b["action_id"] == action for b in buttons_of(now))

        await self._until_acknowledged(lambda: self.fake.click(who, question, action),
                                       still_asked)  # fmt: skip

    async def type(self, who: str, text: str) -> None:
        payload = self.fake.build_dm_message(who, text)  # the message is in the DM now
        await self._delivered(lambda: self.fake.push_event(payload))

    def texts(self, who: str) -> list[str]:
        return [str(m["text"]) for m in self._dm(who)]

    def _dm(self, who: str) -> list[JSON]:
        return [m | {"channel": self.fake.dm_channel(who)}
                for m in self.fake.bot_messages(self.fake.dm_channel(who))]  # fmt: skip

    async def _delivered(self, push: Callable[[], Awaitable[JSON]]) -> JSON:
        """Push an envelope; when the socket dies under it, Slack tries again once the app is
        connected (events not acknowledged are then retried by the fake itself)."""
        while True:
            try:
                return await push()
            except (ConnectionError, RuntimeError):  # the app died while it was sent
                await self.fake.wait_for(lambda: self.fake.connected, STEP, "a connection")

    async def _until_acknowledged(
        self, act: Callable[[], Awaitable[JSON]], again: Callable[[], bool] = lambda: True
    ) -> None:
        """A command or click, done again while Slack reports it failed and ``again()``."""
        while True:
            envelope = await self._delivered(act)
            eid = envelope["envelope_id"]
            await self.fake.wait_for(partial(self._settled, eid), STEP, f"Slack on {eid}")
            if eid in self.fake.acks or not again():
                return
            self.repeated += 1

    def _settled(self, eid: str) -> bool:
        """Slack knows how envelope ``eid`` went: acknowledged, or shown as failed."""
        return eid in self.fake.acks or any(e["envelope_id"] == eid for e in self.fake.expired)


async def test_kill_9_under_load_on_slack_socket_mode(tmp_path: Path) -> None:
    async with FakeSlack() as fake:
        fake.connect_timeout = STEP  # while the app is down, Slack waits for it to connect
        fake.user(STAFF, "stella", locale="en-GB")
        ids = [f"U0K{n:05d}" for n in range(CUSTOMERS)]
        for who in ids:
            fake.user(who, f"customer{who.lower()}", locale="en-US")
        platform = SlackCustomers(fake)
        site = Installation.create(
            tmp_path, platform,
            f"staff: {{slack: [{STAFF}]}}\n"
            "slack: {mode: socket}\n"
            f"server: {{host: 127.0.0.1, port: {free_port()}}}\n"
            # a crashed process's claims come back after 5 s, not 15: a shorter test
            "inbox: {lease: 5s}\n"
            "surveys: {remind_after: null}\n",
            {"SURVEYBOT_SLACK_BOT_TOKEN": fake.bot_token, "SURVEYBOT_SLACK_APP_TOKEN":
             fake.app_token, "SURVEYBOT_SLACK__API_BASE_URL": fake.base_url},
        )  # fmt: skip
        customers = crowd(ids)
        figures = await load_with_kill_9(site, customers, CONCURRENCY, KILL_AFTER)
        rows = await site.export()
        figures.stored = len(rows)
        print(figures, f"; commands and clicks done again: {platform.repeated}")
        nothing_lost(site, customers, rows)
        assert fake.protocol_errors == []
