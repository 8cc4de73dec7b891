"""One vocabulary for customer stories, on every surface a customer answers from.

A story is written once against :class:`Customer` — ``start("nps")``, ``tap("9")``,
``type("…")``, ``expect_question(…)``, ``expect_thanks(locale="el")`` — and runs on the runtime
with the recording adapter, on Telegram (the real python-telegram-bot against the fake Bot
API) and on Slack (the real bolt app against the fake Slack, Socket Mode and HTTP). Each of
those implements the small :class:`Surface` protocol; every action returns once the bot has
answered the customer, by waiting on what the customer can see, never on the clock.

Customers are personas by language: ``surface.customer("el")`` is a Greek-speaking customer
(Eleni on Telegram, Nikos on Slack, "eleni" on the runtime), so a story says which language
it expects and every surface makes its platform say it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.chat import Address, Inbound, Prompt
from bot.conversation.runtime import Runtime
from bot.survey.flow import localize, render
from bot.survey.loader import FlowRegistry
from bot.survey.texts import text_for
from storage.base import Storage
from storage.sqlite.backend import SQLiteStorage
from tests.fakes.telegram_api import FakeTelegram
from tests.support import slack_support, telegram_harness
from tests.support.recording import RecordingAdapter

Answer = tuple[str, object]  # (question id, value or typed text), as `surveybot export` has it
SURFACES = ("runtime", "telegram", "slack-socket", "slack-http")


@dataclass(frozen=True)
class Seen:
    """The newest thing the bot showed a customer: its whole text and its buttons' labels."""

    text: str
    labels: tuple[str, ...] = ()


class Surface(Protocol):
    """Where customers answer. ``who`` is a persona's locale: "en", "el" or "lt"."""

    name: str
    registry: FlowRegistry
    storage: Storage

    async def begin(self, who: str, flow: str) -> None:
        """The survey reaches the customer the way this surface starts one."""

    async def tap(self, who: str, label: str) -> None:
        """Tap the button labelled ``label`` on the newest question."""

    async def type(self, who: str, text: str) -> None:
        """Type ``text`` where the survey is asked."""

    async def skip(self, who: str) -> None:
        """Give the surface's skip command (``/skip``)."""

    def last_seen(self, who: str) -> Seen:
        """The newest message (or notice) the bot showed the customer."""

    def tapped_now(self, who: str) -> str:
        """The text of the last tapped question as it shows now (the choice marked on it)."""


@dataclass
class Customer:
    """A customer in a story; every step waits until the bot answered."""

    surface: Surface
    locale: str
    flow: str | None = None

    async def start(self, flow: str) -> Customer:
        self.flow = flow
        await self.surface.begin(self.locale, flow)
        return self

    async def tap(self, label_or_value: str) -> None:
        await self.surface.tap(self.locale, label_or_value)

    async def type(self, text: str) -> None:
        await self.surface.type(self.locale, text)

    async def skip(self) -> None:
        await self.surface.skip(self.locale)

    def expect_question(
        self, text: str, *, labels: list[str] | None = None, hint: str | None = None
    ) -> Seen:
        """The newest message asks ``text`` (a part of it), with these buttons and hint."""
        seen = self.surface.last_seen(self.locale)
        assert text in seen.text, f"{self.surface.name}: expected a question with {text!r}: {seen}"
        if labels is not None:
            assert list(seen.labels) == labels, f"{self.surface.name}: buttons {seen.labels}"
        if hint is not None:
            assert hint in seen.text, f"{self.surface.name}: expected hint {hint!r}: {seen}"
        return seen

    def expect_choice_shown(self, label: str) -> None:
        """The question just tapped now shows the choice made."""
        now = self.surface.tapped_now(self.locale)
        assert now.rstrip().endswith(label), f"{self.surface.name}: tapped message is {now!r}"

    def expect_thanks(self, locale: str) -> None:
        """The newest message is the flow's thanks in ``locale``."""
        assert self.flow is not None, "start a survey first"
        flow = self.surface.registry.get(self.flow)
        assert flow is not None
        expected = (
            render(localize(flow.thanks, locale, flow.fallback), {})
            if flow.thanks is not None
            else text_for("thanks", locale, flow, {})
        )
        seen = self.surface.last_seen(self.locale)
        assert seen.text == expected and not seen.labels, f"{self.surface.name}: {seen}"

    def expect_notice(self, text: str) -> None:
        seen = self.surface.last_seen(self.locale)
        assert seen.text == text, f"{self.surface.name}: expected notice {text!r}: {seen}"

    async def answers(self) -> list[Answer]:
        return await recorded(self.surface.storage)


async def recorded(storage: Storage) -> list[Answer]:
    """(question, value or text) of every stored answer, oldest first."""
    return [
        (r.question_id, r.value if r.text is None else r.text) async for r in storage.export_rows()
    ]


def customer(surface: Surface, locale: str) -> Customer:
    return Customer(surface, locale)


# ---------------------------------------------------------------------------- the runtime
@dataclass
class RuntimeSurface:
    """The runtime and a recording adapter, on SQLite; no platform in between."""

    runtime: Runtime
    adapter: RecordingAdapter
    storage: Storage
    name: str = "runtime"
    _events: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def registry(self) -> FlowRegistry:
        return self.runtime.registry

    def _user(self, who: str) -> str:
        return {"en": "anna", "el": "eleni", "lt": "rasa"}[who]

    def _event(self) -> str:
        return f"story-{next(self._events)}"

    async def begin(self, who: str, flow: str) -> None:
        await self.runtime.start_survey(
            flow, Address(platform="console", user_id=self._user(who)), locale=who
        )

    def _question(self, who: str) -> Prompt:
        user = self._user(who)
        prompts = [p for p in self.adapter.prompts(user) if p.buttons]
        assert prompts, f"runtime: no question with buttons for {user}"
        return prompts[-1]

    async def tap(self, who: str, label: str) -> None:
        buttons = [b for b in self._question(who).buttons if b.label == label]
        assert buttons, f"runtime: no button {label!r} on {self._question(who)}"
        await self._handle(who, kind="tap", payload=buttons[0].payload)

    async def type(self, who: str, text: str) -> None:
        await self._handle(who, kind="text", text=text)

    async def skip(self, who: str) -> None:
        await self._handle(who, kind="skip")

    async def _handle(self, who: str, **what: str) -> None:
        inbound = Inbound.model_validate(
            {
                "platform": "console",
                "user_id": self._user(who),
                "event_id": self._event(),
                "locale": who,
                **what,
            }  # the language a platform reports for the person
        )
        await self.runtime.handle(inbound)

    def last_seen(self, who: str) -> Seen:
        entries = self.adapter.seen_by(self._user(who))
        assert entries, f"runtime: {self._user(who)} saw nothing"
        last = entries[-1]
        if isinstance(last, str):
            return Seen(last)
        text = f"{last.hint}\n\n{last.text}" if last.hint else last.text
        return Seen(text, tuple(b.label for b in last.buttons))

    def tapped_now(self, who: str) -> str:
        settled = [t for inbound, t in self.adapter.settled if inbound.user_id == self._user(who)]
        assert settled, "runtime: no tapped question was settled"
        return settled[-1]


@asynccontextmanager
async def runtime_surface(tmp_path: Path, flows_dir: Path) -> AsyncIterator[RuntimeSurface]:
    registry = FlowRegistry(flows_dir)
    assert registry.load_all() == []
    storage = SQLiteStorage(f"sqlite:///{tmp_path / 'story.db'}")
    await storage.open()
    adapter = RecordingAdapter()
    try:
        yield RuntimeSurface(Runtime(registry, storage, {"console": adapter}), adapter, storage)
    finally:
        await storage.close()


# ---------------------------------------------------------------------------- Telegram
@dataclass
class TelegramSurface:
    """surveybot's Telegram runner (polling) against the fake Bot API; customers start
    surveys themselves with ``/start <flow>`` (a deep link)."""

    world: telegram_harness.World
    name: str = "telegram"
    _people: dict[str, telegram_harness.Person] = field(default_factory=dict)
    _tapped: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def registry(self) -> FlowRegistry:
        return self.world.svc.registry

    @property
    def storage(self) -> Storage:
        return self.world.svc.storage

    def _person(self, who: str) -> telegram_harness.Person:
        if who not in self._people:
            uid = {"en": telegram_harness.ANNA, "el": telegram_harness.ELENI,
                   "lt": telegram_harness.RASA}[who]  # fmt: skip
            self._people[who] = self.world.person(uid)
        return self._people[who]

    async def _answered(self, who: str) -> None:
        await self._person(who).receives()

    async def begin(self, who: str, flow: str) -> None:
        self._person(who).says(f"/start {flow}")
        await self._answered(who)

    async def tap(self, who: str, label: str) -> None:
        person = self._person(who)
        question = next(m for m in reversed(self._messages(who)) if m.get("reply_markup"))
        self._tapped[who] = question
        await person.taps(question, label)
        await self._answered(who)

    async def type(self, who: str, text: str) -> None:
        self._person(who).says(text)
        await self._answered(who)

    async def skip(self, who: str) -> None:
        await self.type(who, "/skip")

    def _messages(self, who: str) -> list[dict[str, object]]:
        person = self._person(who)
        return self.world.fake.chat_messages(person.chat, bot_only=True)

    def last_seen(self, who: str) -> Seen:
        last = self._messages(who)[-1]
        labels = [label for row in telegram_harness.labels(last) for label in row]
        return Seen(str(last["text"]), tuple(labels))

    def tapped_now(self, who: str) -> str:
        return str(self._person(who).message_now(self._tapped[who])["text"])


@asynccontextmanager
async def telegram_surface(tmp_path: Path, flows_dir: Path) -> AsyncIterator[TelegramSurface]:
    async with FakeTelegram() as fake:
        telegram_harness.add_people(fake)
        settings = telegram_harness.make_settings(fake, flows_dir, tmp_path / "surveys.db")
        async with telegram_harness.running_bot(fake, settings) as world:
            yield TelegramSurface(world)


# ---------------------------------------------------------------------------- Slack
@dataclass
class SlackSurface:
    """surveybot's Slack runner against the fake Slack; staff send the survey with
    ``/survey <flow> @customer`` and the customer answers in the DM."""

    ws: slack_support.Workspace
    name: str = "slack"
    _tapped: dict[str, str] = field(default_factory=dict)  # who -> ts of the tapped question

    @property
    def registry(self) -> FlowRegistry:
        return self.ws.svc.registry

    @property
    def storage(self) -> Storage:
        return self.ws.svc.storage

    @staticmethod
    def _user(who: str) -> str:
        return {"en": slack_support.AMY, "el": slack_support.NIKOS, "lt": slack_support.RUTA}[who]

    async def _after(self, who: str, before: int) -> None:
        """Wait until the bot posted something new in the customer's DM."""
        await self.ws.fake.wait_for(
            lambda: len(self.ws.messages(self._user(who))) > before, what=f"a reply to {who}"
        )

    async def begin(self, who: str, flow: str) -> None:
        before = len(self.ws.messages(self._user(who)))
        await self.ws.command(slack_support.STAFF, f"{flow} <@{self._user(who)}>")
        await self._after(who, before)

    async def tap(self, who: str, label: str) -> None:
        user = self._user(who)
        before, question = len(self.ws.messages(user)), self.ws.question(user)
        self._tapped[who] = question["ts"]
        await self.ws.tap(user, label, question)
        await self._after(who, before)

    async def type(self, who: str, text: str) -> None:
        before = len(self.ws.messages(self._user(who)))
        await self.ws.type(self._user(who), text)
        await self._after(who, before)

    async def skip(self, who: str) -> None:
        user = self._user(who)
        before = len(self.ws.messages(user))
        await self.ws.command(user, "", command="/skip", channel=self.ws.dm(user))
        await self._after(who, before)

    def last_seen(self, who: str) -> Seen:
        last = self.ws.messages(self._user(who))[-1]
        return Seen(str(last["text"]), tuple(slack_support.labels(last)))

    def tapped_now(self, who: str) -> str:
        ts = self._tapped[who]
        return str(next(m for m in self.ws.messages(self._user(who)) if m["ts"] == ts)["text"])


@asynccontextmanager
async def slack_surface(
    tmp_path: Path, flows_dir: Path, mode: slack_support.Mode
) -> AsyncIterator[SlackSurface]:
    async with slack_support.workspace(tmp_path, flows_dir, mode) as ws:
        yield SlackSurface(ws, name=f"slack-{mode}")
        assert ws.fake.protocol_errors == []


@asynccontextmanager
async def surface(name: str, tmp_path: Path, flows_dir: Path) -> AsyncIterator[Surface]:
    """The surface called ``name`` (one of SURFACES), running until the block ends."""
    if name == "runtime":
        async with runtime_surface(tmp_path, flows_dir) as runtime:
            yield runtime
    elif name == "telegram":
        async with telegram_surface(tmp_path, flows_dir) as telegram:
            yield telegram
    else:
        mode: slack_support.Mode = "socket" if name == "slack-socket" else "http"
        async with slack_surface(tmp_path, flows_dir, mode) as slack:
            yield slack
