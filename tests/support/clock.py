"""A fake clock for the dispatcher and runtime, and a recording adapter that notes send times.

``clock()`` is the test's time; ``clock.advance(hours=24)`` moves it. ``clock.sleep`` never
waits: it moves the *calling task's* time forward (a context variable), so jobs that run
concurrently each see their own wait, as they would on a real clock, and the test's time only
moves when the test says so (or when the test's own task sleeps).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.chat import Address, Prompt, Sent
from tests.support.recording import RecordingAdapter

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = START
    slept: list[float] = field(default_factory=list)
    _task_time: ContextVar[datetime | None] = field(
        default_factory=lambda: ContextVar("fake_task_time", default=None)
    )

    def __call__(self) -> datetime:
        mine = self._task_time.get()
        return max(self.now, mine) if mine is not None else self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self() + timedelta(**delta)
        self._task_time.set(None)
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._task_time.set(self() + timedelta(seconds=max(0.0, seconds)))
        await asyncio.sleep(0)


@dataclass
class TimedAdapter(RecordingAdapter):
    """A RecordingAdapter that also notes, for each delivery, the clock's time."""

    clock: FakeClock = field(default_factory=FakeClock)
    times: list[datetime] = field(default_factory=list)
    delivered: asyncio.Event = field(default_factory=asyncio.Event)  # set by every delivery

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        sent = await super().send(address, prompt)
        self.times.append(self.clock())
        self.delivered.set()
        return sent


@dataclass
class ManualClock:
    """A monotonic clock (seconds) that moves only when the test says: ``clock.advance(1.5)``.
    ``clock.sleep(s)`` waits until the test has moved the clock ``s`` seconds on, so a budget
    or timer driven by it acts exactly when the test decides, never on the wall clock."""

    now: float = 1000.0
    _moved: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()
        self._moved = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        while self.now < until - 1e-9:
            await self._moved.wait()
        await asyncio.sleep(0)
