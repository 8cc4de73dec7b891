"""A strict fake Slack (Web API, Socket Mode, Events API over HTTP, response_url) for
end-to-end tests.

The real slack-sdk / slack-bolt talk to it over HTTP and WebSocket on 127.0.0.1:
``AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)`` and
``AsyncSocketModeHandler(app, fake.app_token)``. Test code pushes events with
``await fake.slash_command(...)`` / ``click(...)`` / ``dm_message(...)`` / ``react(...)`` /
``shortcut(...)`` / ``thread_reply(...)`` and asserts on the recorded ``posts``, ``updates``,
``ephemerals``, ``responses``, ``messages`` and ``acks``. For HTTP mode the same payloads come
from ``build_*`` methods: tests post them themselves (``slash_command_http`` /
``block_actions_http`` / ``events_http``, signed with ``signed_headers``), or let the fake
deliver events like Slack does with ``post_event`` (retried on timeout or error).

The parts: ``slack_state`` (workspace, messages, threads), ``slack_events`` (payload
builders), ``slack_methods`` (Web API, response_url), ``slack_socket`` (Socket Mode and its
redelivery), ``slack_blocks`` (Block Kit checks), ``slack_http`` (signed requests); this module
adds HTTP routes and Events API delivery over HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.fakes.slack_blocks import (
    BLOCK_TYPES,
    ELEMENT_TYPES,
    JSON,
    SlackError,
    check_message,
    validate_blocks,
)
from tests.fakes.slack_http import (
    SlackHTTP,
    block_actions_http,
    events_http,
    send_http,
    signed_headers,
    slash_command_http,
)
from tests.fakes.slack_socket import SlackSocket
from tests.fakes.slack_state import Call, FakeUser

__all__ = [
    "BLOCK_TYPES", "ELEMENT_TYPES", "JSON", "Call", "FakeSlack", "FakeUser", "HttpDelivery",
    "SlackError", "SlackHTTP", "block_actions_http", "check_message", "events_http",
    "send_http", "signed_headers", "slash_command_http", "validate_blocks",
]  # fmt: skip


@dataclass
class HttpDelivery:
    """One event Slack delivers to the app's Request URL, with every attempt: (retry number,
    HTTP status or 0 for no answer in time / no connection)."""

    payload: JSON
    attempts: list[tuple[int, int]] = field(default_factory=list)
    acknowledged: bool = False  # some attempt got 2xx within the timeout
    done: asyncio.Event = field(default_factory=asyncio.Event)  # acknowledged or given up


class FakeSlack(SlackSocket):
    def __init__(self) -> None:
        super().__init__()
        self.request_url: str | None = None  # the app's Events API URL, for post_event
        self.http_deliveries: list[HttpDelivery] = []
        self._http_session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response/{rid}", self._response_url)

    async def stopping(self) -> None:
        await self.stop_watching()
        await self.close_sockets()
        if self._http_session is not None:
            await self._http_session.close()

    # ---------------- Events API over HTTP
    async def post_event(self, payload: JSON, url: str | None = None) -> HttpDelivery:
        """Deliver an event_callback to the app's Request URL like Slack: signed; an attempt not
        answered 2xx within ``ack_timeout`` (http_timeout — Slack does not wait for the late
        answer), answered non-2xx (http_error) or not connected (connection_failed) is retried
        with X-Slack-Retry-Num / X-Slack-Retry-Reason after ``retry_delays`` — unless a non-2xx
        answer carries ``X-Slack-No-Retry: 1``. Returns at once; await ``delivery.done``."""
        target = url or self.request_url
        if target is None:
            raise ValueError("set fake.request_url (the app's /slack/events) first")
        delivery = HttpDelivery(payload)
        self.http_deliveries.append(delivery)
        task = asyncio.ensure_future(self._deliver(target, delivery))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return delivery

    async def _deliver(self, url: str, delivery: HttpDelivery) -> None:
        if self._http_session is None:
            self._http_session = aiohttp.ClientSession()
        retry, reason = 0, ""
        try:
            while True:
                req = events_http(delivery.payload, self.signing_secret,
                                  retry_num=retry or None, retry_reason=reason)  # fmt: skip
                status, reason, stop = await self._attempt(url, req, retry, delivery)
                if 200 <= status < 300 or stop or retry >= len(self.retry_delays):
                    delivery.acknowledged = 200 <= status < 300
                    return
                await asyncio.sleep(self.retry_delays[retry])
                retry += 1
        finally:
            delivery.done.set()

    async def _attempt(
        self, url: str, req: SlackHTTP, retry: int, delivery: HttpDelivery
    ) -> tuple[int, str, bool]:
        """One POST: (status or 0, Slack's retry reason for the next attempt, no-retry asked)."""
        assert self._http_session is not None
        session = self._http_session

        async def post() -> tuple[int, bool]:
            async with session.post(url, data=req.body, headers=req.headers) as r:
                await r.read()
                return r.status, r.headers.get("X-Slack-No-Retry") == "1"

        call = asyncio.ensure_future(post())
        try:
            status, no_retry = await asyncio.wait_for(asyncio.shield(call), self.ack_timeout)
        except TimeoutError:
            delivery.attempts.append((retry, 0))
            self._watchers.add(call)  # the late answer is awaited but changes nothing
            call.add_done_callback(self._watchers.discard)
            return 0, "http_timeout", False
        except aiohttp.ClientError:
            delivery.attempts.append((retry, 0))
            return 0, "connection_failed", False
        delivery.attempts.append((retry, status))
        return status, "http_error", no_retry

    def dump(self) -> str:
        attempts = [(d.payload.get("event_id"), d.attempts) for d in self.http_deliveries]
        return super().dump() + (f"\nhttp deliveries: {attempts}" if attempts else "")
