"""Slack's delivery promises, as the fake keeps them, proven with the real slack-sdk: an
Events API envelope not acknowledged within the ack timeout (Slack: 3 s) comes again with
retry_attempt / retry_reason, up to three retries, also to a client that reconnects; over HTTP
an event not answered 2xx in time is posted again with X-Slack-Retry-Num / -Reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack

JSON = dict[str, Any]
Listener = Callable[[SocketModeClient, SocketModeRequest], Awaitable[None]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        f.user("U0CUST", "nikos", locale="el-GR")
        f.user("U0STAFF", "stella")
        f.ack_timeout, f.retry_delays = 0.2, (0.0, 0.05, 0.05)  # Slack: 3 s; 0, 1 and 5 min
        yield f


class App:
    """A Socket Mode app on the real SocketModeClient that acks only what ``acks`` allows."""

    def __init__(self, fake: FakeSlack, acks: Callable[[SocketModeRequest], bool]) -> None:
        self.fake, self.acks, self.got = fake, acks, []
        web_client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        self.client = SocketModeClient(app_token=fake.app_token, web_client=web_client)
        self.client.socket_mode_request_listeners.append(self._on)  # type: ignore[arg-type]
        self.got: list[SocketModeRequest] = []

    async def _on(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        self.got.append(req)
        if self.acks(req):
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    async def __aenter__(self) -> App:
        await self.client.connect()
        await self.fake.wait_for(lambda: self.fake.connected, what="connection")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()


def attempts(app: App) -> list[tuple[int | None, str | None]]:
    return [(r.retry_attempt, r.retry_reason) for r in app.got]


async def test_an_event_not_acked_in_time_comes_again_with_retry_attempt(fake: FakeSlack) -> None:
    async with App(fake, acks=lambda req: bool(req.retry_attempt)) as app:  # acks retries only
        first = await fake.dm_message("U0CUST", "Πολύ καλά")
        await fake.wait_for(lambda: len(app.got) == 2 and not fake.retrying, what="one retry")
        assert attempts(app) == [(0, ""), (1, "timeout")]
        again = app.got[1]
        assert again.envelope_id != first["envelope_id"]
        assert again.payload["event_id"] == first["payload"]["event_id"]
        assert first["envelope_id"] not in fake.acks and again.envelope_id in fake.acks
        assert fake.protocol_errors == []


async def test_slack_gives_up_after_three_retries(fake: FakeSlack) -> None:
    async with App(fake, acks=lambda req: False) as app:
        await fake.dm_message("U0CUST", "hello?")
        await fake.wait_for(lambda: len(app.got) == 4 and not fake.retrying, what="3 retries")
        assert attempts(app) == [(0, ""), (1, "timeout"), (2, "timeout"), (3, "timeout")]


async def test_a_retry_waits_for_the_app_to_reconnect(fake: FakeSlack) -> None:
    async with App(fake, acks=lambda req: False) as crashed:
        await fake.dm_message("U0CUST", "sent while the app dies")
        await fake.wait_for(lambda: crashed.got, what="the first delivery")
    await fake.wait_for(lambda: not fake.connected, what="the app gone")
    async with App(fake, acks=lambda req: True) as restarted:
        await fake.wait_for(lambda: restarted.got and not fake.retrying, what="the retry")
        assert attempts(restarted) == [(1, "timeout")]


async def test_commands_and_clicks_are_not_redelivered_but_expire(fake: FakeSlack) -> None:
    async with App(fake, acks=lambda req: False) as app:
        env = await fake.slash_command("U0STAFF", "csat <@U0CUST>")
        await fake.wait_for(lambda: fake.expired and not fake.retrying, what="the 3 s to pass")
        assert [e["envelope_id"] for e in fake.expired] == [env["envelope_id"]]
        assert len(app.got) == 1


async def serve(handler: Callable[[web.Request], Awaitable[web.Response]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/slack/events", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def test_over_http_an_event_is_retried_until_answered_2xx(fake: FakeSlack) -> None:
    verifier = SignatureVerifier(fake.signing_secret)
    seen: list[tuple[str | None, str | None]] = []
    release = asyncio.Event()

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        assert verifier.is_valid_request(body, dict(request.headers))
        seen.append((request.headers.get("X-Slack-Retry-Num"),
                     request.headers.get("X-Slack-Retry-Reason")))  # fmt: skip
        if len(seen) == 1:
            await release.wait()  # answers long after Slack stopped waiting
            return web.Response(text="late")
        return web.Response(status=500 if len(seen) == 2 else 200)

    runner = await serve(events)
    fake.request_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        delivery = await fake.post_event(fake.build_dm_message("U0CUST", "Ευχαριστώ"))
        await asyncio.wait_for(delivery.done.wait(), 10)
        assert delivery.acknowledged
        assert delivery.attempts == [(0, 0), (1, 500), (2, 200)]
        assert seen == [(None, None), ("1", "http_timeout"), ("2", "http_error")]
    finally:
        release.set()
        await runner.cleanup()


async def test_over_http_no_retry_is_honoured_and_a_dead_app_gets_connection_failed(
    fake: FakeSlack,
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=503, headers={"X-Slack-No-Retry": "1"})

    runner = await serve(refuse)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        refused = await fake.post_event(fake.build_dm_message("U0CUST", "one"), url=url)
        await asyncio.wait_for(refused.done.wait(), 10)
        assert refused.attempts == [(0, 503)] and not refused.acknowledged
    finally:
        await runner.cleanup()
    dead = await fake.post_event(fake.build_dm_message("U0CUST", "two"), url=url)
    await asyncio.wait_for(dead.done.wait(), 10)
    assert dead.attempts == [(0, 0), (1, 0), (2, 0), (3, 0)] and not dead.acknowledged


@pytest.mark.parametrize("kind", ["not_json", "no_payload", "event_without_type"])
async def test_a_malformed_envelope_reaches_the_sdk_which_keeps_serving(
    fake: FakeSlack, kind: str
) -> None:
    async with App(fake, acks=lambda req: True) as app:
        sent = await fake.push_malformed(kind)
        after = await fake.dm_message("U0CUST", "still here")
        await fake.wait_ack(after)
        assert app.got[-1].envelope_id == after["envelope_id"]
        if isinstance(sent, dict) and "payload" in sent:  # the SDK hands it on like any other
            assert any(r.envelope_id == sent["envelope_id"] for r in app.got)
        if kind == "no_payload":  # the SDK drops it unacknowledged: Slack retries it
            await fake.wait_for(lambda: not fake.retrying, what="the retries")
            retried = [e for e in fake.envelopes if "payload" not in e]
            assert [e["retry_attempt"] for e in retried] == [0, 1, 2, 3]
        assert fake.protocol_errors == []
