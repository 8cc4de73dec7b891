"""Per-key serialization inside one process: one ``asyncio.Lock`` per key, kept only while
someone holds or waits for it (a busy bot sees millions of keys; none stays in memory idle).

Used for a session's events (the runtime), a customer's trigger requests (the dispatcher) and a
Telegram user's updates (their order). Across processes the storage's version checks decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyedLock(Generic[K]):
    """``async with locks.hold(key):`` runs one holder per key at a time, in arrival order."""

    def __init__(self) -> None:
        self._locks: dict[K, asyncio.Lock] = {}
        self._waiters: dict[K, int] = {}

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:
                del self._waiters[key], self._locks[key]

    def busy(self, key: K) -> bool:
        """Someone holds ``key`` right now."""
        lock = self._locks.get(key)
        return lock is not None and lock.locked()

    def __len__(self) -> int:
        """Keys held or waited for."""
        return len(self._locks)
