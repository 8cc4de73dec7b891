"""Polling mode: our own getUpdates loop, so that an update is confirmed only once it is in the
inbox.

python-telegram-bot's Updater parses a whole batch before handing it on; one update it cannot
parse is then never confirmed and blocks everyone behind it. Here the batch stays raw JSON
(``Bot.do_api_request(..., return_type=None)``), each update becomes a
:class:`bot.chat.RawEvent` with pure functions that never raise, the inbox takes the batch, and
only then does the next getUpdates call carry ``offset = last update_id + 1`` (which is what
confirms the batch to Telegram). When the inbox cannot take it, the offset stays where it was,
the loop backs off and the same batch comes again.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.warnings import PTBUserWarning

from bot.chat import RawEvent
from bot.platforms.telegram.adapter import redacted
from bot.platforms.telegram.raw import raw_event, update_id_of

log = logging.getLogger(__name__)
Accept = Callable[[Sequence[RawEvent]], Awaitable[None]]
LONG_POLL = 10  # seconds Telegram holds a getUpdates call open when there is nothing new
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
# We call getUpdates through do_api_request on purpose (to keep the JSON raw); PTB warns.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)


class Poller:
    def __init__(self, bot: Bot, accept: Accept, allowed_updates: Sequence[str]) -> None:
        self.bot = bot
        self.accept = accept
        self.allowed_updates = list(allowed_updates)
        self.offset: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        """Stop fetching; confirm what the inbox took, so the next start does not fetch it
        again (it would be a harmless duplicate)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.offset is not None:
            try:
                await self._get_updates(wait=0, limit=1)
            except TelegramError as exc:
                log.info("could not confirm the last updates at stop: %s", self._err(exc))

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                batch = await self._get_updates(wait=LONG_POLL)
                stored = await self._store(batch)
            except asyncio.CancelledError:
                raise
            except (TimedOut, NetworkError, TelegramError) as exc:
                if isinstance(exc, InvalidToken):
                    log.error("telegram polling stopped: the bot token was rejected")
                    return
                if failures == 0 or not isinstance(exc, TimedOut):
                    log.warning("telegram getUpdates failed: %s (retrying)", self._err(exc))
                stored = False
            failures = 0 if stored else failures + 1
            if failures:
                await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF)) - 1])

    async def _store(self, batch: list[Any]) -> bool:
        """Put a batch in the inbox; True when it is in and the offset may move past it."""
        if not batch:
            return True
        events = [raw_event(update) for update in batch]
        try:
            await self.accept(events)
        except Exception:  # the inbox logged and reported it; keep the offset
            return False
        ids = [i for i in (update_id_of(u) for u in batch) if i is not None]
        if ids:
            self.offset = max(ids) + 1
        return True

    async def _get_updates(self, *, wait: int, limit: int | None = None) -> list[Any]:
        kwargs: dict[str, Any] = {"timeout": wait, "allowed_updates": self.allowed_updates}
        if self.offset is not None:
            kwargs["offset"] = self.offset
        if limit is not None:
            kwargs["limit"] = limit
        result = await self.bot.do_api_request(
            "getUpdates", api_kwargs=kwargs, return_type=None, read_timeout=wait + 5
        )
        return result if isinstance(result, list) else []

    def _err(self, exc: Exception) -> str:
        return redacted(exc, self.bot.token)
