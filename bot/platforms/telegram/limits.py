"""Telegram flood control on PTB's rate-limiter hook: no pacing here, only 429s.

The pace of what the bot sends is the sender's (:mod:`bot.conversation.budget`, from
``telegram.rate_limit``): it knows interactive from bulk, and PTB's ``AIORateLimiter`` did not —
it spaced every call at 30/s and made answerCallbackQuery wait out any 429 with the rest.

:class:`FloodRetry` only answers Telegram's "429 Too Many Requests, retry after N": a call made
under the sender's budget lets it surface as ``DeliveryError(retry_after=N)`` (the budget
pauses that chat and the sender sends again after exactly N seconds); any other call (a tap's
answerCallbackQuery, a notice, a staff reply, setMyCommands) waits exactly N seconds and is
made again, up to ``max_retries`` times. Nothing waits for any other call.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.conversation.budget import BUDGETED

log = logging.getLogger(__name__)
JSON = dict[str, Any]


def retry_after_seconds(exc: RetryAfter) -> float:
    """Telegram's retry_after in seconds (PTB 22 gives int or timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


class FloodRetry(BaseRateLimiter[int]):
    """``rate_limit_args`` (an int) overrides ``max_retries`` for one call."""

    def __init__(self, max_retries: int = 3) -> None:
        self.max_retries = max_retries

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSON | list[JSON]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSON | list[JSON]:
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        attempt = 0
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if BUDGETED.get() or attempt >= retries:
                    raise
                attempt += 1
                wait = retry_after_seconds(exc)
                log.info("telegram %s: flood control, again in %.1f s", endpoint, wait)
                await asyncio.sleep(wait)
