"""Outgoing send rate limits: the one home of the per-platform and per-chat pace.

Each limit is a GCRA ("generic cell rate algorithm") cell: a rate and a burst. A send books the
earliest moment every limit that applies to it allows — the platform-wide one and the one for
its chat — and the caller waits until then (or re-queues the job when that is far off). Booking
is conservative: slots are never handed out twice, even when callers book out of order.

:class:`RateLimiter` is a pure scheduler over an injected clock (the dispatcher books survey
sends and reminders with it). What the sender delivers is paced by its budget
(:mod:`bot.conversation.budget`).

Defaults follow the platforms' published guidance: Telegram about 30 messages/s per bot and
1 message/s per chat; Slack about 1 message/s per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field


class SendRate(BaseModel):
    """Messages per second, overall and per chat; None = unlimited. ``burst`` > 1 lets that
    many go at once platform-wide before the rate applies (then up to burst + rate may go
    within one second); a chat never gets more than its rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float | None = Field(default=None, gt=0)
    per_chat_per_second: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)
    per_chat_burst: int = Field(default=1, ge=1)  # messages to one chat that may go at once


DEFAULT_RATES: dict[str, SendRate] = {
    # a little under Telegram's 30/s: sends that start late must not crowd into one second
    "telegram": SendRate(per_second=28, per_chat_per_second=1),
    "slack": SendRate(per_second=20, per_chat_per_second=1),
}


@dataclass
class _Cell:
    interval: timedelta
    tolerance: timedelta  # how far ahead of the theoretical arrival time a send may go
    tat: datetime | None = None  # theoretical arrival time of the next conforming send

    def earliest(self, now: datetime) -> datetime:
        if self.tat is None:
            return now
        return max(now, self.tat - self.tolerance)

    def book(self, at: datetime) -> None:
        self.tat = max(self.tat or at, at) + self.interval


def _cell(per_second: float, burst: int) -> _Cell:
    interval = timedelta(microseconds=math.ceil(1_000_000 / per_second))
    return _Cell(interval=interval, tolerance=interval * (burst - 1))


@dataclass
class RateLimiter:
    rates: dict[str, SendRate] = field(default_factory=lambda: dict(DEFAULT_RATES))
    _platform: dict[str, _Cell] = field(default_factory=dict, repr=False)
    _chats: dict[tuple[str, str], _Cell] = field(default_factory=dict, repr=False)
    _paused: dict[str, datetime] = field(default_factory=dict, repr=False)

    def earliest(self, platform: str, chat: str, now: datetime) -> datetime:
        """When a message to ``chat`` on ``platform`` may go, without booking it."""
        paused = self._paused.get(platform, now)
        return max([now, paused, *(c.earliest(now) for c in self._cells(platform, chat))])

    def pause(self, platform: str, until: datetime) -> None:
        """The platform asked us to back off (HTTP 429 retry_after): nothing goes before."""
        self._paused[platform] = max(until, self._paused.get(platform, until))

    def book(self, platform: str, chat: str, now: datetime) -> datetime:
        """Book the earliest allowed slot and return it: the caller sends at that moment."""
        self._forget_idle(now)
        slot = self.earliest(platform, chat, now)
        for cell in self._cells(platform, chat):
            cell.book(slot)
        return slot

    def _cells(self, platform: str, chat: str) -> list[_Cell]:
        rate = self.rates.get(platform)
        if rate is None:
            return []
        cells = []
        if rate.per_second is not None:
            if platform not in self._platform:
                self._platform[platform] = _cell(rate.per_second, rate.burst)
            cells.append(self._platform[platform])
        if rate.per_chat_per_second is not None:
            key = (platform, chat)
            if key not in self._chats:
                self._chats[key] = _cell(rate.per_chat_per_second, rate.per_chat_burst)
            cells.append(self._chats[key])
        return cells

    def _forget_idle(self, now: datetime) -> None:
        """Chats whose slot lies in the past carry no state worth keeping."""
        if len(self._chats) > 1024:
            idle = [k for k, c in self._chats.items() if c.tat is None or c.tat <= now]
            for key in idle:
                del self._chats[key]
