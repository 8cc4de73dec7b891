"""A strict fake Telegram Bot API server that the real python-telegram-bot talks to over HTTP.

Pass ``fake.base_url`` as PTB's ``base_url`` (our ``telegram.api_base_url``). Tests act as users
with ``send_text`` / ``tap`` (and ``inject_raw`` / ``unparseable`` for poison updates) and
assert on ``sent``, ``chat_messages()``, ``callback_answers``, ``commands`` and ``calls``. Errors
carry Telegram's own codes and descriptions.

The parts: ``telegram_state`` (users, chats, messages, the update queue and the builders tests
use), ``telegram_methods`` (the Bot API methods and strict limits), ``telegram_checks`` (text
and keyboard validation), ``telegram_limits`` (Telegram's send limits); this module adds HTTP
and webhook delivery.

With ``deliver_updates = False`` the fake only builds updates (``send_text`` / ``tap`` return
them) and delivers nothing itself: a test acting as a load balancer in front of several
webhook workers posts them where it likes.

Webhook delivery starts updates in update order over up to ``max_connections`` (setWebhook;
Telegram's default 40) simultaneous POSTs, so one slow or failing update does not hold up the
others; an update whose POST is not answered 2xx (an error, no answer within
``webhook_timeout``, a refused connection) is posted again after a growing pause
(``webhook_retry_delay`` doubling up to ``webhook_max_delay``) until it is answered, the webhook
is removed, or ``webhook_max_attempts`` (None: no limit, like Telegram keeping an update for a
day) is reached.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from tests.fakes.telegram_checks import (
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    ApiError,
    JSONDict,
    Params,
    bad,
    check_markup,
    visible_text,
)
from tests.fakes.telegram_limits import SendLimits
from tests.fakes.telegram_methods import TelegramMethods
from tests.fakes.telegram_state import Call, FakeUser

__all__ = [
    "NOT_MODIFIED", "QUERY_TOO_OLD", "ApiError", "Call", "FakeTelegram", "FakeUser", "JSONDict",
    "Params", "SendLimits", "bad", "check_markup", "visible_text",
]  # fmt: skip


class FakeTelegram(TelegramMethods):
    def __init__(self, token: str = "123456:TEST-token", bot_username: str = "surveybot_test_bot"):
        super().__init__(token, bot_username)
        self.webhook_max_attempts: int | None = None
        self.webhook_retry_delay, self.webhook_max_delay = 0.05, 1.0
        self.webhook_timeout = 5.0
        self._in_flight: dict[asyncio.Task[None], list[Any]] = {}
        self._session: ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle)

    async def started(self) -> None:
        self._session = ClientSession()
        self._worker = asyncio.create_task(self._webhook_worker())

    async def stopping(self) -> None:
        self._closing = True
        self.release_answers()
        self.notify()
        tasks = [t for t in (self._worker, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session:
            await self._session.close()

    # ---- HTTP --------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        arrived, method = time.monotonic(), request.match_info["method"]
        raw: JSONDict = dict(request.query)
        if request.can_read_body and request.content_type == "application/json":
            body = await request.json(loads=lambda s: json.loads(s or "{}"))
            raw.update(body if isinstance(body, dict) else {})
        elif request.can_read_body:  # PTB: x-www-form-urlencoded, multipart with files
            raw.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        status, payload = await self.call_method(method, request.match_info["token"], raw)
        self.calls.append(Call(method, arrived, raw, status))
        return web.json_response(payload, status=status)

    async def _post_update(self, update: JSONDict) -> tuple[int, str]:
        """POST one update to the webhook: (status, reason); status 0 = no answer."""
        assert self._session is not None and self.webhook_url is not None
        secret = self.webhook_secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        try:
            async with self._session.post(
                self.webhook_url, json=update, headers=headers,
                timeout=ClientTimeout(total=self.webhook_timeout),
            ) as response:  # fmt: skip
                return response.status, response.reason or ""
        except TimeoutError:
            return 0, "Read timeout expired"
        except ClientError as err:
            return 0, f"Connection failed: {err}"

    async def _webhook_worker(self) -> None:
        """Start a delivery for each pending update, at most ``max_connections`` at a time."""
        while True:
            changed = self.changed()
            busy = {id(task_entry) for task_entry in self._in_flight.values()}
            free = [e for e in self._pending if id(e) not in busy]
            room = len(self._in_flight) < self.webhook_max_connections
            if not (self.webhook_url and free and room):
                await changed.wait()
                continue
            task = asyncio.create_task(self._deliver(free[0]))
            self._in_flight[task] = free[0]
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self.notify()

    async def _deliver(self, entry: list[Any]) -> None:
        """POST one update until it is answered 2xx (or given up on, or the webhook is gone)."""
        attempt, delay, done = 0, self.webhook_retry_delay, False
        while self.webhook_url and not self._closing and not done:
            attempt += 1
            status, reason = await self._post_update(entry[0])
            self.webhook_deliveries.append((entry[0]["update_id"], status))
            if done := 200 <= status < 300:
                break
            error = f"Wrong response from the webhook: {status} {reason}" if status else reason
            self._webhook_error = (int(time.time()), error)
            limit = self.webhook_max_attempts
            if done := bool(limit) and attempt >= (limit or 0):
                break  # Telegram gives up on this update
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.webhook_max_delay)
        if done:  # else it waits: for the webhook to come back, or for getUpdates
            self._pending = [e for e in self._pending if e is not entry]
