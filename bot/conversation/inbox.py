"""The inbox: where every platform event goes, raw, before the platform is acknowledged.

Edges (Telegram polling and webhook, Slack Socket Mode and HTTP) turn what arrived into
:class:`bot.chat.RawEvent` with pure functions and call :meth:`Inbox.accept`; only when it
returns do they confirm the offset, answer 200 or ack the envelope. If it raises, they do not
acknowledge, so the platform delivers the event again.

Each platform registers a processor (``processors[platform]``): it parses a raw event and hands
it to the runtime, raising when something went wrong. A failure never blocks other customers:
it is logged once (one line: event id, error class and message, never the customer's text)
and counted in ``surveybot_inbox_quarantined_total``.

One customer's events (the same ``key``) are handled one after another, in arrival order;
different customers' concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bot import metrics
from bot.chat import RawEvent
from bot.conversation.health import WriteHealth

log = logging.getLogger(__name__)
Process = Callable[[RawEvent], Awaitable[None]]


def describe(exc: BaseException) -> str:
    """An error for the log and the quarantine list: class and first line, bounded."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


@dataclass
class Inbox:
    health: WriteHealth = field(default_factory=WriteHealth)
    processors: dict[str, Process] = field(default_factory=dict)
    _chains: dict[str, asyncio.Future[None]] = field(default_factory=dict, repr=False)

    async def accept(self, events: Sequence[RawEvent]) -> None:
        """Take events from an edge; when this returns, the edge may acknowledge them."""
        if not events:
            return
        await asyncio.gather(*(self._after_others(event) for event in events))

    async def _after_others(self, event: RawEvent) -> None:
        """Process ``event`` after the events with its key that came before it."""
        before = self._chains.get(event.key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chains[event.key] = mine
        try:
            if before is not None:
                await asyncio.shield(before)
            await self._process(event)
        finally:
            mine.set_result(None)
            if self._chains.get(event.key) is mine:
                del self._chains[event.key]

    async def _process(self, event: RawEvent) -> None:
        process = self.processors.get(event.platform)
        if process is None:
            log.error("inbox event %s: no processor for platform %s", event.event_id,
                      event.platform)  # fmt: skip
            return
        try:
            await process(event)
        except Exception as exc:
            metrics.INBOX_QUARANTINED.labels(event.platform).inc()
            log.error("inbox event %s quarantined: %s", event.event_id, describe(exc))
