"""Platform-neutral helpers for adapters: per-chat posting pace and recently seen delivery ids.

Pure apart from the injected clock and sleep, so tests drive them without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable


class ChannelPacer:
    """About ``per_second`` posts per channel, ``burst`` at once (GCRA). Each caller books a
    slot before sleeping, so concurrent posts to one channel queue up in order."""

    def __init__(
        self,
        per_second: float | None = 1.0,
        burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 1 / per_second if per_second else 0.0
        self.tolerance = self.interval * (burst - 1)
        self.clock, self.sleep = clock, sleep
        self._tat: dict[str, float] = {}

    def book(self, channel: str) -> float:
        """Seconds to wait before posting to ``channel`` (the slot is taken)."""
        if not self.interval:
            return 0.0
        now = self.clock()
        if len(self._tat) > 4096:
            self._tat = {c: t for c, t in self._tat.items() if t > now}
        tat = self._tat.get(channel, now)
        slot = max(now, tat - self.tolerance)
        self._tat[channel] = max(tat, slot) + self.interval
        return slot - now

    async def wait(self, channel: str) -> None:
        delay = self.book(channel)
        if delay > 0:
            await self.sleep(delay)


class RecentIds:
    """A bounded set of delivery ids seen by this process (duplicates and retries)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """True the first time ``key`` is seen."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True
