"""Delivers the ``webhook`` lane of the outbox: signed POSTs, at least once.

Each row is claimed with a lease (a process killed mid-delivery leaves it to be claimed again:
the receiver may see an event twice and dedupes by its id), posted with a fresh
``Surveybot-Signature``, and then marked sent (any 2xx), retried with exponential backoff
(anything else, including timeouts and refused connections), or dead-lettered once
``retry_for`` has passed since the event was created. ``surveybot webhooks`` lists the rows and
puts dead ones back in line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from bot.conversation.webhooks import HEADER, WebhooksConfig, sign
from storage.base import OutboxMessage, Storage, utcnow

log = logging.getLogger(__name__)


@dataclass
class WebhookDelivery:
    storage: Storage
    config: WebhooksConfig
    clock: Callable[[], datetime] = utcnow
    poll: float = 1.0  # seconds between looks at the outbox when idle
    batch: int = 16
    _client: httpx.AsyncClient | None = field(default=None, repr=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; an idle loop looks again every ``poll`` seconds."""
        timeout = self.config.timeout.total_seconds()
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            self._client = client
            while not stop.is_set():
                self._wake.clear()
                try:
                    done = await self.deliver_due()
                except Exception as exc:  # storage logs its own failures; look again soon
                    log.warning("webhook delivery: %r", exc)
                    done = 0
                if done:
                    continue
                waits = {
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                }
                _, pending = await asyncio.wait(waits, timeout=self.poll,
                                                return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                for task in pending:
                    task.cancel()
            self._client = None

    async def deliver_due(self) -> int:
        """Claim the due deliveries and post them side by side; how many were claimed."""
        lease = self.config.timeout * 2  # a post takes at most `timeout`; then it is claimable
        rows = await self.storage.outbox_claim(self.batch, lease, self.clock(), lanes=("webhook",))
        if rows:
            await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: OutboxMessage) -> None:
        assert row.id is not None
        data = json.loads(row.body)
        name, event = data["endpoint"], data["event"]
        endpoint = self.config.endpoints.get(name)
        if endpoint is None:
            await self.storage.outbox_dead(row.id, f"endpoint {name!r} is no longer configured")
            return
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        now = self.clock()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "surveybot-webhooks",
            HEADER: sign(self.config.secret(name), int(now.timestamp()), body),
            "Surveybot-Event-Id": event["id"],
        }
        try:
            response = await self._post(endpoint.url, body, headers)
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        if error is None:
            await self.storage.outbox_sent(row.id, f"HTTP {response.status_code}", self.clock())
            return
        await self._failed(row, error)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        if self._client is not None:
            return await self._client.post(url, content=body, headers=headers)
        async with httpx.AsyncClient(timeout=self.config.timeout.total_seconds()) as client:
            return await client.post(url, content=body, headers=headers)

    async def _failed(self, row: OutboxMessage, error: str) -> None:
        """Retry after the backoff, or dead-letter once ``retry_for`` has run out."""
        assert row.id is not None
        retry_at = self.clock() + self.config.backoff(row.attempts)
        if retry_at > row.created_at + self.config.retry_for:
            log.warning("webhook %s dead after %d attempts: %s", row.id, row.attempts, error)
            await self.storage.outbox_dead(row.id, error)
        else:
            log.info("webhook %s failed (%s); retry at %s", row.id, error, retry_at.isoformat())
            await self.storage.outbox_retry(row.id, retry_at, error)
