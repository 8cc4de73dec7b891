"""Simulated Telegram customers for bench/pipeline_bench.py, acting through the fake Bot API.

A customer does what a person answering NPS does: sends the start command, taps a score on the
question's keyboard, types a comment, and reads the thanks. The latency of a step runs from the
customer's action (just before the update is handed to the fake) to the arrival at the fake of
the bot's ``sendMessage`` that answers it (the fake's own timestamp of that request): the
question after the start command, the follow-up question after the tap, the thanks after the
comment. Edits and callback answers are counted as platform calls, not as replies.

By default a customer acts the instant the bot's message arrives. With ``think`` > 0 a
customer reads before acting, as people do: before the tap and before the comment it waits
``think`` seconds × a factor drawn uniformly from 0.5–1.5 (seeded by the customer's id, so two
bots see the same customers). The think time is not part of a step's latency.

:class:`Watch` follows the fake's recorded calls and sent messages (append-only lists, read
incrementally) so that a thousand waiting customers cost one scan per tick, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram_api import FakeTelegram

STEPS = ("start", "tap", "comment")
TICK = 0.002  # seconds between looks at the fake's records (latencies use the fake's clock)


class StepTimeout(Exception):
    pass


@dataclass
class Watch:
    """Per chat: the arrival time and content of every bot message the fake accepted."""

    fake: FakeTelegram
    _calls_seen: int = 0
    _sent_seen: int = 0
    _times: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    _messages: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _waiting: dict[int, asyncio.Event] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def start(self) -> Watch:
        self._task = asyncio.create_task(self._follow())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(TICK)

    def poll(self) -> None:
        touched: set[int] = set()
        calls = self.fake.calls
        for call in calls[self._calls_seen :]:
            if call.method.lower() == "sendmessage" and call.status == 200:
                chat = _chat_id(call.params.get("chat_id"))
                self._times[chat].append(call.at)
                touched.add(chat)
        self._calls_seen = len(calls)
        sent = self.fake.sent
        for entry in sent[self._sent_seen :]:
            chat = int(entry["chat_id"])
            self._messages[chat].append(entry)
            touched.add(chat)
        self._sent_seen = len(sent)
        for chat in touched & self._waiting.keys():
            self._waiting.pop(chat).set()

    def count(self, chat: int) -> int:
        return min(len(self._times.get(chat, ())), len(self._messages.get(chat, ())))

    def first_at(self, chat: int) -> float | None:
        times = self._times.get(chat)
        return times[0] if times else None

    async def message(self, chat: int, n: int, patience: float) -> tuple[float, dict[str, Any]]:
        """The ``n``-th (1-based) bot message to ``chat``: (arrival time, sent entry)."""
        deadline = time.monotonic() + patience
        while self.count(chat) < n:
            event = self._waiting.setdefault(chat, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.poll()
                if self.count(chat) < n:
                    raise StepTimeout(
                        f"chat {chat}: bot message {n} did not come in {patience} s"
                    ) from None
        return self._times[chat][n - 1], self._messages[chat][n - 1]


def _chat_id(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        return 0


@dataclass
class Outcome:
    """One customer's survey: step latencies (seconds) and whether the thanks came."""

    user_id: int
    latencies: dict[str, float] = field(default_factory=dict)
    finished_at: float | None = None
    completed: bool = False
    error: str | None = None


def score_button(message: dict[str, Any], score: int) -> str:
    """The callback data of the ``score``-th button (0–10 in keyboard order)."""
    markup = message.get("reply_markup") or {}
    buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
    if len(buttons) != 11:
        raise ValueError(f"expected an 11-button 0–10 keyboard, got {len(buttons)} buttons")
    return str(buttons[score]["callback_data"])


async def answer_survey(
    fake: FakeTelegram,
    watch: Watch,
    user_id: int,
    start_command: str,
    thanks: str,
    patience: float,
    think: float = 0.0,
) -> Outcome:
    """One customer, start to thanks. A step that gets no reply in ``patience`` s ends the
    customer's survey (recorded as not completed, never hangs the run)."""
    outcome = Outcome(user_id)
    user = fake.user(user_id, f"Customer {user_id}", "en")
    score = user_id % 11
    reading = random.Random(user_id)

    async def read() -> None:
        if think > 0:
            await asyncio.sleep(think * reading.uniform(0.5, 1.5))

    try:
        acted = time.monotonic()
        fake.send_text(user, start_command)
        at, question = await watch.message(user_id, 1, patience)
        outcome.latencies["start"] = at - acted
        data = score_button(question, score)
        await read()
        acted = time.monotonic()
        fake.tap(user, question, data)
        at, _ = await watch.message(user_id, 2, patience)
        outcome.latencies["tap"] = at - acted
        await read()
        acted = time.monotonic()
        fake.send_text(user, f"Comment from customer {user_id}: quick and friendly support.")
        at, last = await watch.message(user_id, 3, patience)
        outcome.latencies["comment"] = at - acted
        outcome.finished_at = at
        outcome.completed = last["text"] == thanks
        if not outcome.completed:
            outcome.error = f"expected the thanks, got {last['text']!r}"
    except (StepTimeout, ValueError) as exc:
        outcome.error = str(exc)
    return outcome


async def crowd(
    fake: FakeTelegram,
    watch: Watch,
    user_ids: Sequence[int],
    concurrency: int,
    start_command: str,
    thanks: str,
    patience: float,
    think: float = 0.0,
) -> tuple[list[Outcome], float]:
    """``user_ids`` answer, ``concurrency`` at a time; returns outcomes and the elapsed time
    from the first action to the last thanks."""
    gate = asyncio.Semaphore(concurrency)

    async def one(user_id: int) -> Outcome:
        async with gate:
            return await answer_survey(fake, watch, user_id, start_command, thanks, patience, think)

    began = time.monotonic()
    outcomes = list(await asyncio.gather(*(one(u) for u in user_ids)))
    ends = [o.finished_at for o in outcomes if o.finished_at is not None]
    return outcomes, (max(ends) if ends else time.monotonic()) - began


def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def step_latencies(outcomes: Iterable[Outcome], steps: Sequence[str] = STEPS) -> list[float]:
    return [o.latencies[s] for o in outcomes for s in steps if s in o.latencies]
