"""A platform's send budget, shared by everything the sender delivers to it.

The sender asks :meth:`Budget.acquire` before each message (a new message or an edit) and
sends when it returns. The budget holds the platform's published limits — messages per second
to all chats, per chat (with a short burst), per group per minute — and two lanes:

- **interactive** (what a customer is waiting for: the next question after their tap, hints,
  thanks) goes first;
- **bulk** (scheduled surveys, reminders, API requests) takes what interactive leaves, and never
  starves: while bulk waits it earns ``bulk_min_share`` of the per-second rate as credit, and a
  free slot goes to bulk whenever it holds a whole message of credit.

A platform's 429 pauses only what it concerns (:meth:`Budget.pause`: one chat, or the whole
platform when the platform says so) until exactly the moment it named. What answers the
customer's own action (Telegram's answerCallbackQuery, Slack's ack) never comes here.

The overall limit paces every message at ``rate`` = ``per_second`` × :data:`HEADROOM` with a
short burst (:data:`OVERALL_BURST`: an idle budget lets a customer's step through at once, the
edit and the next question), and a sliding window checks what the platform counts: at most
``ceil(rate)`` messages in any second (29 for Telegram's 30/s), so a burst never adds up to
one message too many in a second. Bulk has a cell of its own at ``rate`` without a burst: bulk
alone goes evenly, and the burst stays for customers. The pace, the per chat and the per group
limits are GCRA cells ("generic cell rate algorithm": a theoretical arrival time per key,
equivalent to a token bucket). Waiters are few (one per chat in flight, the sender's
concurrency at most), so choosing the next one is a scan. Time is an injected monotonic
``clock`` and waits an injected ``sleep``: tests move time by hand and never wait.

Why not ``aiolimiter`` (which PTB's rate-limiter extra installs): it is one FIFO leaky bucket
over the event loop's clock. The budget needs several limits that must all agree before a
slot is taken (a slot taken from the overall limit while the chat's limit is still closed is
wasted), priority between lanes with a guaranteed share, pauses per chat, and a clock tests
can move; stacking AsyncLimiters gives none of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

Lane = Literal["interactive", "bulk"]
# Sends are planned a little under the configured rates: a message granted on time may reach
# the platform a few milliseconds late (or the one before it early), and a platform counting
# arrivals must never see one too many.
HEADROOM = 0.95
EPSILON = 1e-6
# Messages to all chats that may go at once when the budget has been idle: a customer's step (the
# edit of the tapped question and the next one) and a quick customer's thanks right after.
OVERALL_BURST = 4
# True while the sender makes a call under a budget: a platform client then lets a 429 surface
# (as DeliveryError.retry_after) instead of retrying it itself, so that the budget pauses the
# chat and the sender tries again at exactly the moment the platform named.
BUDGETED: ContextVar[bool] = ContextVar("surveybot_budgeted", default=False)


@dataclass(frozen=True)
class Limits:
    """One platform's limits; 0 turns a limit off."""

    per_second: float = 0.0  # messages to all chats together
    per_chat_per_second: float = 0.0
    chat_burst: int = 1  # messages one chat may get at once before its pace applies
    group_per_minute: float = 0.0  # messages to one group (Telegram: chat id < 0)
    bulk_min_share: float = 0.0  # of per_second, always bulk's while bulk waits

    @property
    def off(self) -> bool:
        return not (self.per_second or self.per_chat_per_second or self.group_per_minute)


@dataclass
class _Window:
    """At most ``limit`` sends in any ``span`` seconds: the times of the last ``limit``."""

    limit: int
    span: float
    sent: deque[float] = field(init=False)

    def __post_init__(self) -> None:
        self.sent = deque(maxlen=self.limit)

    def earliest(self, now: float) -> float:
        return now if len(self.sent) < self.limit else max(now, self.sent[0] + self.span)

    def book(self, at: float) -> None:
        """A send at ``at``: the time it really went (the platform counts those)."""
        self.sent.append(at)


def _window(per_second: float) -> _Window | None:
    """What the platform counts: arrivals in any second (planned under its limit)."""
    if per_second <= 0:
        return None
    return _Window(max(1, math.ceil(per_second * HEADROOM)), 1.0)


@dataclass
class _Cell:
    """GCRA: ``interval`` between sends, ``burst`` of them at once."""

    interval: float
    burst: int = 1
    tat: float = -math.inf  # theoretical arrival time of the next conforming send

    def earliest(self, now: float) -> float:
        return max(now, self.tat - self.interval * (self.burst - 1))

    def book(self, at: float) -> None:
        """A send at ``at``. One granted a little late (a timer fires after its moment) is
        booked from its theoretical time, so lateness does not lower the rate."""
        late = 0.0 <= at - self.tat < self.interval
        self.tat = (self.tat if late else max(self.tat, at)) + self.interval

    def idle(self, now: float) -> bool:
        return self.tat <= now


def _cell(per_second: float, burst: int = 1) -> _Cell | None:
    return _Cell(1.0 / (per_second * HEADROOM), max(1, burst)) if per_second > 0 else None


def _group_cell(limits: Limits) -> _Cell:
    """A group's per-minute limit with the chat's burst (a tap in a group owes an edit and the
    next question at once): ``burst`` at once, then a pace slow enough that no minute ever
    holds more than the limit (burst + 60 s / interval <= per minute)."""
    per_minute = limits.group_per_minute * HEADROOM
    burst = max(1, min(limits.chat_burst, int(per_minute) // 4))
    return _Cell(60.0 / max(per_minute - burst, 1.0 / 60), burst)


@dataclass(eq=False)
class _Waiter:
    lane: Lane
    chat: str
    group: bool
    granted: asyncio.Future[None]


@dataclass
class Budget:
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    granted: int = 0  # sends allowed so far, all lanes
    _overall: _Cell | None = field(init=False, default=None)  # the pace, with a short burst
    _count: _Window | None = field(init=False, default=None)  # what the platform counts
    _bulk: _Cell | None = field(init=False, default=None)  # bulk alone goes evenly
    _chats: dict[str, _Cell] = field(init=False, default_factory=dict)
    _groups: dict[str, _Cell] = field(init=False, default_factory=dict)
    _paused: dict[str, float] = field(init=False, default_factory=dict)  # chat -> until
    _paused_all: float = field(init=False, default=-math.inf)
    _waiting: list[_Waiter] = field(init=False, default_factory=list)  # oldest first
    _credit: float = field(init=False, default=0.0)  # bulk's earned share, in messages
    _credit_at: float | None = field(init=False, default=None)
    _timer: asyncio.Task[None] | None = field(init=False, default=None)
    _timer_at: float = field(init=False, default=math.inf)

    def __post_init__(self) -> None:
        self._overall = _cell(self.limits.per_second, OVERALL_BURST)
        self._count = _window(self.limits.per_second)
        self._bulk = _cell(self.limits.per_second)

    # the sender's side -----------------------------------------------------------------
    async def acquire(self, lane: Lane, chat: str, *, group: bool = False) -> None:
        """Return when a message to ``chat`` may go; the slot is taken. Cancelling gives the
        place up."""
        if self.limits.off and not self._paused and self._paused_all == -math.inf:
            self.granted += 1
            return
        waiter = _Waiter(lane, chat, group, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        self._pump()
        try:
            await waiter.granted
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
                self._pump()

    def pause(self, chat: str | None, seconds: float) -> None:
        """The platform answered 429 "retry after ``seconds``": nothing goes to ``chat`` (to
        anyone, when ``chat`` is None) before then."""
        until = self.clock() + max(0.0, seconds)
        if chat is None:
            self._paused_all = max(self._paused_all, until)
        else:
            self._paused[chat] = max(self._paused.get(chat, until), until)
        self._pump()

    def waiting(self, lane: Lane | None = None) -> int:
        return sum(1 for w in self._waiting if lane is None or w.lane == lane)

    @property
    def bulk_per_second(self) -> float:
        """How fast bulk may go when nothing interactive waits (0 = no limit)."""
        return self.limits.per_second * HEADROOM

    # scheduling ------------------------------------------------------------------------
    def _pump(self) -> None:
        """Grant every waiter that may go now; set the timer for the next one."""
        now = self.clock()
        self._earn(now)
        while (waiter := self._pick(now)) is not None:
            self._grant(waiter, now)
        self._forget(now)
        self._arm(min((self._earliest(w, now) for w in self._waiting), default=math.inf))

    def _earn(self, now: float) -> None:
        """Bulk earns its share while it waits (at most one second's worth)."""
        share = self.limits.bulk_min_share * self.limits.per_second * HEADROOM
        bulk_waits = any(w.lane == "bulk" for w in self._waiting)
        if self._credit_at is not None and bulk_waits and share > 0:
            self._credit = min(max(1.0, share), self._credit + (now - self._credit_at) * share)
        self._credit_at = now

    def _pick(self, now: float) -> _Waiter | None:
        if self._overall is not None and self._overall.earliest(now) > now + EPSILON:
            return None
        if self._count is not None and self._count.earliest(now) > now + EPSILON:
            return None
        first: dict[Lane, _Waiter] = {}
        for waiter in self._waiting:
            if waiter.lane not in first and self._earliest(waiter, now) <= now + EPSILON:
                first[waiter.lane] = waiter
        bulk, interactive = first.get("bulk"), first.get("interactive")
        if bulk is not None and (interactive is None or self._credit >= 1.0 - EPSILON):
            return bulk
        return interactive

    def _grant(self, waiter: _Waiter, now: float) -> None:
        self._waiting.remove(waiter)
        for cell in self._cells(waiter):
            cell.book(now)
        if waiter.lane == "bulk":
            self._credit = max(0.0, self._credit - 1.0)
        self.granted += 1
        if not waiter.granted.done():
            waiter.granted.set_result(None)

    def _earliest(self, waiter: _Waiter, now: float) -> float:
        at = max(now, self._paused_all, self._paused.get(waiter.chat, now))
        for overall in (self._overall, self._count):
            if overall is not None:
                at = max(at, overall.earliest(now))
        for cell in self._cells(waiter, overall=False):
            at = max(at, cell.earliest(now))
        return at

    def _cells(self, waiter: _Waiter, *, overall: bool = True) -> list[_Cell | _Window]:
        cells: list[_Cell | _Window] = []
        if overall and self._overall is not None and self._count is not None:
            cells += [self._overall, self._count]
        if waiter.lane == "bulk" and self._bulk is not None:
            cells.append(self._bulk)
        limits = self.limits
        if limits.per_chat_per_second > 0:
            if waiter.chat not in self._chats:
                self._chats[waiter.chat] = _Cell(
                    1.0 / (limits.per_chat_per_second * HEADROOM), max(1, limits.chat_burst)
                )
            cells.append(self._chats[waiter.chat])
        if waiter.group and limits.group_per_minute > 0:
            if waiter.chat not in self._groups:
                self._groups[waiter.chat] = _group_cell(limits)
            cells.append(self._groups[waiter.chat])
        return cells

    def _forget(self, now: float) -> None:
        """Chats whose limits and pauses lie in the past carry nothing worth keeping."""
        if len(self._chats) + len(self._groups) + len(self._paused) < 1024:
            return
        waiting = {w.chat for w in self._waiting}
        for table in (self._chats, self._groups):
            for chat in [c for c, cell in table.items() if cell.idle(now) and c not in waiting]:
                del table[chat]
        for chat in [c for c, until in self._paused.items() if until <= now]:
            del self._paused[chat]

    def _arm(self, at: float) -> None:
        """Run :meth:`_pump` again at ``at`` (one timer; an earlier need replaces it)."""
        if at == math.inf:
            self._cancel_timer()
            return
        if self._timer is not None and not self._timer.done() and self._timer_at <= at:
            return
        self._cancel_timer()
        self._timer_at = at
        self._timer = asyncio.get_running_loop().create_task(self._wake_at(at))

    def _cancel_timer(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer, self._timer_at = None, math.inf

    async def _wake_at(self, at: float) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.sleep(max(0.0, at - self.clock()))
            if self._timer is asyncio.current_task():
                self._timer, self._timer_at = None, math.inf
            self._pump()
