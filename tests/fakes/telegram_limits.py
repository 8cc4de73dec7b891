"""Telegram's published send limits, enforced by the fake Bot API in strict mode.

Telegram's guidance (core.telegram.org/bots/faq, "My bot is hitting limits"): about 30 messages
per second overall, about one message per second to one chat (short bursts are tolerated), and
no more than 20 messages per minute to one group. Over a limit Telegram answers 429 with
``parameters.retry_after``; :class:`SendLimits` decides that answer from the times of the sends it
allowed. Only accepted sends count against the budgets. A limit of 0 is off.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field


@dataclass
class SendLimits:
    """Sliding windows for the overall and group budgets, a token bucket per chat."""

    per_second: int = 30
    per_chat_per_second: float = 1.0
    chat_burst: int = 3  # messages one chat may get at once before the 1/s pace applies
    group_per_minute: int = 20
    _overall: deque[float] = field(default_factory=deque)
    _groups: defaultdict[int, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def check(self, chat_id: int, now: float) -> int | None:
        """Seconds to wait (Telegram's retry_after, at least 1) or None: the send may go and is
        counted."""
        waits = [
            _window_wait(self._overall, self.per_second, 1.0, now),
            self._chat_wait(chat_id, now),
        ]
        if chat_id < 0:  # groups and supergroups
            waits.append(_window_wait(self._groups[chat_id], self.group_per_minute, 60.0, now))
        wait = max(w for w in waits)
        if wait > 0:
            return max(1, math.ceil(wait))
        self._overall.append(now)
        if chat_id < 0:
            self._groups[chat_id].append(now)
        tokens, _ = self._buckets[chat_id]
        spent = max(tokens - 1, 0.0) if self.per_chat_per_second > 0 else 1.0
        self._buckets[chat_id] = (spent, now)
        return None

    def _chat_wait(self, chat_id: int, now: float) -> float:
        if self.per_chat_per_second <= 0:
            self._buckets[chat_id] = (1.0, now)  # off: every send may go
            return 0.0
        tokens, at = self._buckets.get(chat_id, (float(self.chat_burst), now))
        tokens = min(float(self.chat_burst), tokens + (now - at) * self.per_chat_per_second)
        self._buckets[chat_id] = (tokens, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.per_chat_per_second


def _window_wait(sent: deque[float], limit: int, window: float, now: float) -> float:
    while sent and sent[0] <= now - window:
        sent.popleft()
    if limit <= 0:  # off
        return 0.0
    return 0.0 if len(sent) < limit else sent[0] + window - now
