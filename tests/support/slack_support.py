"""A Slack workspace for end-to-end tests: the fake Slack, surveybot's real services on SQLite
and the real bolt app behind ``bot.platforms.slack.runner``, in Socket Mode or in HTTP mode (uvicorn
on 127.0.0.1 serving the FastAPI app, requests signed like Slack signs them).

Tests speak in people's terms — ``await ws.command(STAFF, "csat @nikos")``,
``await ws.tap(CUSTOMER, "9")``, ``await ws.type(CUSTOMER, "great")`` — and every helper
returns only after surveybot has finished reacting, by waiting on observable state (acks,
work in flight), never on the clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from bot.app import Services, services
from bot.platforms.slack.runner import SlackRunner
from bot.run import platform_runners
from bot.settings import Settings, SlackConfig, StaffConfig, StorageConfig, SurveysConfig
from bot.web.api import create_app
from storage.base import ExportRow
from tests.fakes.slack_api import (
    FakeSlack,
    SlackHTTP,
    block_actions_http,
    events_http,
    send_http,
    slash_command_http,
)

JSON = dict[str, Any]
Mode = Literal["socket", "http"]

STAFF = "U0STAFF"
NIKOS = "U0NIKOS"  # Greek
RUTA = "U0RUTA"  # Lithuanian
AMY = "U0AMY"  # English
GONE = "U0GONE"  # deactivated: cannot be messaged
EVE = "U0EVE"  # an English-speaking colleague who is not staff


def populate(fake: FakeSlack) -> None:
    fake.user(STAFF, "stella", locale="en-GB")
    fake.user(NIKOS, "nikos", locale="el-GR")
    fake.user(RUTA, "ruta", locale="lt-LT")
    fake.user(AMY, "amy", locale="en-US")
    fake.user(GONE, "gone", cannot_dm=True)
    fake.user(EVE, "eve", locale="en-US")


def make_settings(fake: FakeSlack, tmp_path: Path, flows_dir: Path, mode: Mode) -> Settings:
    return Settings(
        flows_dir=flows_dir,
        storage=StorageConfig(url=f"sqlite:///{tmp_path / 'surveys.db'}"),
        staff=StaffConfig(slack=[STAFF]),
        slack=SlackConfig(mode=mode, api_base_url=fake.base_url),
        surveys=SurveysConfig(remind_after=None),
        slack_bot_token=SecretStr(fake.bot_token),
        slack_app_token=SecretStr(fake.app_token) if mode == "socket" else None,
        slack_signing_secret=SecretStr(fake.signing_secret),
    )


def create_http_app(svc: Services, runner: SlackRunner) -> FastAPI:
    """The project's HTTP app (bot.web.api) with the Slack route mounted, as `surveybot run`
    mounts it."""
    router = runner.router()
    assert router is not None, "HTTP mode must offer POST /slack/events"
    return create_app(svc, routers=[router])


@dataclass
class People:
    """What people do in Slack and what they see, in either mode. ``settled`` decides when
    surveybot has finished reacting; the base class knows nothing about surveybot's insides
    (a subprocess), so its callers wait for what they expect to see instead."""

    fake: FakeSlack
    mode: Mode
    url: str = ""  # POST /slack/events in HTTP mode

    async def settled(self) -> None:
        """Nothing to wait for from outside the process."""

    # what people do ----------------------------------------------------------------------
    async def command(
        self, user: str, text: str, command: str = "/survey", channel: str = "C0STAFF"
    ) -> list[str]:
        """Type a slash command in ``channel``; the ephemeral texts the user saw in answer."""
        before = len(self.fake.ephemerals)
        if self.mode == "socket":
            env = await self.fake.slash_command(user, text, command, channel)
            await self.fake.wait_ack(env)
            direct: list[str] = []
        else:
            payload = self.fake.build_slash_command(user, text, command, channel)
            status, body = await self.post(slash_command_http(payload, self.secret))
            assert status == 200, (status, body)
            direct = [_json_text(body)] if body.strip() else []
        await self.settled()
        seen = [e["text"] for e in self.fake.ephemerals[before:] if e["user"] == user]
        return direct + seen

    async def click(self, user: str, message: JSON, action_id: str, **kw: Any) -> None:
        if self.mode == "socket":
            env = await self.fake.click(user, message, action_id, **kw)
            await self.fake.wait_ack(env)
        else:
            payload = self.fake.build_block_actions(user, message, action_id, **kw)
            status, body = await self.post(block_actions_http(payload, self.secret))
            assert status == 200, (status, body)
        await self.settled()

    async def tap(self, user: str, label: str, message: JSON | None = None) -> None:
        """Tap the button labelled ``label`` on the newest question in the user's DM."""
        message = message or self.question(user)
        await self.click(user, message, action_id_of(message, label))

    async def type(self, user: str, text: str) -> JSON:
        """Type a message in the DM with the bot; the Events API payload Slack sent."""
        return await self._event(self.fake.build_dm_message(user, text))

    # in support channels -----------------------------------------------------------------
    async def post_in_channel(self, user: str, channel: str, text: str) -> str:
        """A message in a channel (a thread's root); its ts."""
        payload = await self._event(self.fake.build_channel_message(user, channel, text))
        return str(payload["event"]["ts"])

    async def reply_in_thread(self, user: str, channel: str, thread_ts: str, text: str) -> JSON:
        """A reply in the thread of ``thread_ts``; the Events API payload Slack sent."""
        return await self._event(
            self.fake.build_channel_message(user, channel, text, thread_ts=thread_ts)
        )

    async def react(self, user: str, channel: str, ts: str, name: str = "white_check_mark") -> JSON:
        """Add a reaction (default ✅) to a message; the ``reaction_added`` payload."""
        return await self._event(self.fake.build_reaction(user, channel, ts, name))

    async def unreact(
        self, user: str, channel: str, ts: str, name: str = "white_check_mark"
    ) -> JSON:
        return await self._event(self.fake.build_reaction(user, channel, ts, name, removed=True))

    async def shortcut(
        self, user: str, channel: str, ts: str, callback_id: str = "send_survey"
    ) -> list[str]:
        """Run a message shortcut on a message; the ephemeral texts the user saw in answer."""
        before = len(self.fake.ephemerals)
        if self.mode == "socket":
            await self.fake.wait_ack(await self.fake.shortcut(user, channel, ts, callback_id))
        else:
            payload = self.fake.build_shortcut(user, channel, ts, callback_id)
            status, body = await self.post(block_actions_http(payload, self.secret))
            assert status == 200, (status, body)
        await self.settled()
        return [e["text"] for e in self.fake.ephemerals[before:] if e["user"] == user]

    def thread_messages(self, channel: str, thread_ts: str) -> list[JSON]:
        """The bot's messages in a thread, as they look now."""
        return [m for m in self.fake.thread(channel, thread_ts) if m.get("bot_id")]

    async def _event(self, payload: JSON) -> JSON:
        """Deliver an Events API payload the way Slack does in this mode (HTTP: with Slack's
        retries when not answered 2xx in time) and wait until surveybot settled."""
        if self.mode == "socket":
            env = await self.fake.push_event(payload)
            await self.fake.wait_ack(env)
        else:
            delivery = await self.fake.post_event(payload, url=self.url)
            await self.fake.wait_for(delivery.done.is_set, timeout=30, what="event delivery")
            assert delivery.acknowledged, delivery.attempts
        await self.settled()
        return payload

    async def redeliver(self, payload: JSON) -> None:
        """Slack delivers the same event again (HTTP: X-Slack-Retry-Num 1; Socket Mode: a new
        envelope with retry_attempt 1)."""
        if self.mode == "socket":
            env = next(e for e in self.fake.envelopes if e["payload"] == payload)
            await self.fake.wait_ack(await self.fake.redeliver(env))
        else:
            status, _ = await self.post(events_http(payload, self.secret, retry_num=1))
            assert status == 200
        await self.settled()

    async def post(self, request: SlackHTTP) -> tuple[int, str]:
        return await send_http(self.url, request)

    @property
    def secret(self) -> str:
        return self.fake.signing_secret

    # what people see ---------------------------------------------------------------------
    def dm(self, user: str) -> str:
        return self.fake.dm_channel(user)

    def messages(self, user: str) -> list[JSON]:
        """The bot's messages in the user's DM, as they look now (edits applied)."""
        return self.fake.bot_messages(self.dm(user))

    def texts(self, user: str) -> list[str]:
        return [m["text"] for m in self.messages(user)]

    def question(self, user: str) -> JSON:
        """The newest bot message in the DM that still has buttons."""
        with_buttons = [m for m in self.messages(user) if buttons_of(m)]
        assert with_buttons, f"no question with buttons in {user}'s DM: {self.texts(user)}"
        return with_buttons[-1]

    def notices(self, user: str) -> list[str]:
        return [e["text"] for e in self.fake.ephemerals if e["user"] == user]


@dataclass
class Workspace(People):
    """surveybot in this process (as `surveybot run` wires it) with the people around it."""

    settings: Settings = field(kw_only=True)
    svc: Services = field(init=False)
    runner: SlackRunner = field(init=False)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open storage and flows, build the runner like `surveybot run`, connect."""
        self._stack = AsyncExitStack()
        self.svc = await self._stack.enter_async_context(services(self.settings))
        stop = asyncio.Event()
        jobs = asyncio.ensure_future(self.svc.dispatcher.run(stop))  # queued sends, retries

        async def stop_jobs() -> None:
            stop.set()
            await jobs

        self._stack.push_async_callback(stop_jobs)
        (runner,) = platform_runners(self.svc)
        assert isinstance(runner, SlackRunner)
        self.runner = runner
        self.svc.inbox.start()
        self._stack.push_async_callback(self.svc.inbox.stop)
        assert self.svc.sender is not None
        self.svc.sender.start()
        self._stack.push_async_callback(self.svc.sender.stop)
        await runner.start()
        self._stack.push_async_callback(runner.stop)
        if self.mode == "http":
            self.url = await self._serve(create_http_app(self.svc, runner))
        else:
            await self.fake.wait_for(lambda: self.fake.connected, what="Socket Mode connection")

    async def stop(self) -> None:
        await self._stack.aclose()

    async def restart(self) -> None:
        """Stop the process (runner, server, storage) and start a new one on the same DB."""
        await self.stop()
        await self.start()

    async def _serve(self, app: FastAPI) -> str:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())

        async def shutdown() -> None:
            server.should_exit = True
            await task

        self._stack.push_async_callback(shutdown)
        await self.fake.wait_for(lambda: server.started or task.done(), what="uvicorn")
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/slack/events"

    async def answers(self) -> list[ExportRow]:
        """What `surveybot export` would print."""
        return [row async for row in self.svc.storage.export_rows()]

    async def settled(self) -> None:
        """Wait until surveybot has no work in flight."""
        sender = self.svc.sender
        await self.fake.wait_for(lambda: not self.svc.inbox.busy and not (sender and sender.busy),
                                 what="surveybot idle")  # fmt: skip


def buttons_of(message: JSON) -> list[JSON]:
    return [
        el
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for el in block["elements"]
    ]


def labels(message: JSON) -> list[str]:
    return [b["text"]["text"] for b in buttons_of(message)]


def action_id_of(message: JSON, label: str) -> str:
    for button in buttons_of(message):
        if button["text"]["text"] == label:
            return str(button["action_id"])
    raise AssertionError(f"no button {label!r} in {labels(message)}: {message['text']!r}")


def _json_text(body: str) -> str:
    """bolt answers ack(text=...) with the bare text, ack(blocks=...) with JSON."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    return str(data.get("text", "")) if isinstance(data, dict) else body


@asynccontextmanager
async def workspace(
    tmp_path: Path, flows_dir: Path, mode: Mode, **settings: Any
) -> AsyncIterator[Workspace]:
    async with FakeSlack() as fake:
        populate(fake)
        base = make_settings(fake, tmp_path, flows_dir, mode)
        ws = Workspace(fake, mode, settings=base.model_copy(update=settings) if settings else base)
        await ws.start()
        try:
            yield ws
        finally:
            await ws.stop()
