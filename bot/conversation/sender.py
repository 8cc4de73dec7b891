"""The sender: delivers the outbox, the messages owed to customers.

The runtime commits what it owes (the edit of the tapped message, the next question, the
thanks) as outbox rows in the same transaction as the answer that makes them owed, then wakes
the sender; after a crash the rows are still there and any process's sender delivers them (at
least once: a repeated question is harmless, its buttons name their question). Rows are
claimed per chat in order (one in flight per chat), interactive lane before bulk.

What each row's body is: :mod:`bot.conversation.owed`. A permanent delivery
error (blocked bot, unknown chat) makes the row dead with the reason; a temporary one is
retried after the platform's Retry-After or a backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics
from bot.chat import Adapter, DeliveryError, Inbound, Prompt, Settled
from bot.conversation.worker import ClaimLoop
from storage.base import OutboxMessage, Storage, utcnow

log = logging.getLogger(__name__)
BACKOFF = (1.0, 5.0, 30.0, 120.0, 600.0)  # seconds before retries 1, 2, ...
MAX_ATTEMPTS = 8


async def send_now(adapter: Adapter, message: OutboxMessage) -> str | None:
    """Deliver one owed message; the platform's message id, if it gave one."""
    if message.kind == "settle":
        data = json.loads(message.body)
        settled = Settled.model_validate(data["settled"])
        await adapter.settle(Inbound.model_validate(data["inbound"]), settled)
        return None
    prompt = Prompt.model_validate_json(message.body)
    sent = await adapter.send(message.address, prompt)
    return sent.message_id


@dataclass
class Sender:
    storage: Storage
    adapters: dict[str, Adapter]
    concurrency: int = 32
    lease: timedelta = timedelta(seconds=15)  # a crashed sender's rows come back after this
    poll: float = 1.0
    clock: Callable[[], datetime] = utcnow
    # told of every delivery (the runtime records the question a session was last shown)
    on_sent: Callable[[OutboxMessage, str | None], Awaitable[None]] | None = None
    _loop: ClaimLoop[OutboxMessage] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._loop = ClaimLoop("sender", self._claim, self._deliver, self.concurrency, self.poll)

    @property
    def busy(self) -> bool:
        return self._loop.busy

    def wake(self) -> None:
        """Something was owed just now: look at once."""
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run(self, stop: asyncio.Event) -> None:
        await self._loop.run(stop)

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        return await self.storage.outbox_claim(limit, self.lease, self.clock())

    async def _deliver(self, message: OutboxMessage) -> None:
        assert message.id is not None
        adapter = self.adapters.get(message.address.platform)
        try:
            if adapter is None:
                raise DeliveryError(f"{message.address.platform} is not connected")
            message_id = await self._send(adapter, message)
        except DeliveryError as exc:
            await self._failed(message, exc, exc.permanent, exc.retry_after)
            return
        except Exception as exc:  # an adapter bug: retried like a temporary failure
            log.exception("sending outbox message %s failed", message.id)
            await self._failed(message, exc, False, None)
            return
        try:
            await self.storage.outbox_sent(message.id, message_id, self.clock())
            if self.on_sent is not None:
                await self.on_sent(message, message_id)
        except Exception as exc:  # the lease runs out and it is sent again: harmless
            log.debug("could not mark outbox message %s sent: %r", message.id, exc)

    async def _send(self, adapter: Adapter, message: OutboxMessage) -> str | None:
        return await send_now(adapter, message)

    async def _failed(
        self, message: OutboxMessage, exc: Exception, permanent: bool, retry_after: float | None
    ) -> None:
        assert message.id is not None
        metrics.SEND_FAILURES.labels(message.address.platform,
                                     "permanent" if permanent else "temporary").inc()  # fmt: skip
        error = f"{type(exc).__name__}: {exc}"[:300]
        try:
            if permanent or message.attempts >= MAX_ATTEMPTS:
                log.warning("outbox message %s to %s:%s given up: %s", message.id,
                            message.address.platform, message.address.user_id, error)  # fmt: skip
                await self.storage.outbox_dead(message.id, error)
                return
            wait = retry_after or BACKOFF[min(message.attempts, len(BACKOFF)) - 1]
            await self.storage.outbox_retry(message.id, self.clock() + timedelta(seconds=wait),
                                            error)  # fmt: skip
        except Exception as store_exc:  # the lease runs out and it comes back
            log.debug("could not record outbox failure %s: %r", message.id, store_exc)
