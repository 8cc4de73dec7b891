"""The real slack-sdk / slack-bolt against tests/fakes/slack_api.FakeSlack."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import (
    FakeSlack,
    block_actions_http,
    events_http,
    send_http,
    signed_headers,
    slash_command_http,
    validate_blocks,
)

JSON = dict[str, Any]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        f.user("U0STAFF", "stella", locale="en-GB")
        f.user("U0CUST", "nikos", locale="el-GR")
        f.user("U0GONE", "gone", cannot_dm=True)
        yield f


def client(fake: FakeSlack, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token or fake.bot_token, base_url=fake.base_url)


def buttons(n: int, text: str = "ok", prefix: str = "b") -> JSON:
    els = [
        {"type": "button", "action_id": f"{prefix}{i}", "value": str(i), "text": {"type": "plain_text", "text": text}}  # noqa: E501
        for i in range(n)
    ]  # fmt: skip
    return {"type": "actions", "block_id": f"blk-{prefix}", "elements": els}


QUESTION = [
    {"type": "section", "block_id": "q", "text": {"type": "mrkdwn", "text": "*How likely…?*"}},
    buttons(11),
]


async def test_web_api_happy_path(fake: FakeSlack) -> None:
    c = client(fake)
    auth = await c.auth_test()
    assert (auth["user_id"], auth["team_id"], auth["bot_id"]) == ("U0BOT", "T0FAKE", "B0BOT")
    info = await c.users_info(user="U0CUST", include_locale=True)
    assert info["user"]["locale"] == "el-GR" and info["user"]["name"] == "nikos"
    assert "locale" not in (await c.users_info(user="U0CUST"))["user"]
    opened = await c.conversations_open(users="U0CUST")
    dm = opened["channel"]["id"]
    assert dm.startswith("D") and opened["no_op"] is False
    assert (await c.conversations_open(users=["U0CUST"]))["channel"]["id"] == dm

    posted = await c.chat_postMessage(channel=dm, text="Q1", blocks=QUESTION)
    ts = posted["ts"]
    assert posted["channel"] == dm and posted["message"]["blocks"] == QUESTION
    assert fake.posts[-1]["ts"] == ts and fake.messages[dm][-1]["text"] == "Q1"
    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "You chose *9*"}}]
    updated = await c.chat_update(channel=dm, ts=ts, text="Q1: 9", blocks=done)
    assert updated["ts"] == ts
    current = fake.messages[dm][-1]
    assert current["ts"] == ts and current["blocks"] == done and current["text"] == "Q1: 9"
    assert len(fake.messages[dm]) == 1 and fake.updates[-1]["via"] == "chat.update"
    eph = await c.chat_postEphemeral(channel="C0STAFF", user="U0STAFF", text="Sent to nikos")
    assert fake.ephemerals[-1]["message_ts"] == eph["message_ts"]
    # posting to a user id lands in the app DM, like Slack
    assert (await c.chat_postMessage(channel="U0CUST", text="hi"))["channel"] == dm
    assert [c.method for c in fake.calls][:3] == ["auth.test", "users.info", "users.info"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "D404", "text": "x"}, "channel_not_found"),
        ({"channel": "C0STAFF"}, "no_text"),
        ({"channel": "C0STAFF", "text": "x" * 40001}, "msg_too_long"),
    ],
)
async def test_post_errors(fake: FakeSlack, kwargs: JSON, error: str) -> None:
    with pytest.raises(SlackApiError) as e:
        await client(fake).chat_postMessage(**kwargs)
    assert e.value.response["error"] == error


async def test_lookup_errors(fake: FakeSlack) -> None:
    c = client(fake)
    cases = [
        (c.chat_update(channel="C0STAFF", ts="1.000001", text="x"), "message_not_found"),
        (c.chat_update(channel="C404", ts="1.000001", text="x"), "channel_not_found"),
        (c.users_info(user="U404"), "user_not_found"),
        (c.conversations_open(users="U404"), "user_not_found"),
        (c.conversations_open(users="U0GONE"), "user_disabled"),
        (c.api_call("chat.scheduleMessageLater"), "unknown_method"),
    ]
    for coro, error in cases:
        with pytest.raises(SlackApiError) as e:
            await coro
        assert e.value.response["error"] == error


def _long(n: int) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("blocks", "needle"),
    [
        ([buttons(26)], "no more than 25 items"),
        ([buttons(2, text=_long(76))], "must be less than 76 characters"),
        ([buttons(2), buttons(2)], "already exists"),  # same action_ids and block_id
        ([buttons(2, prefix="a"), {**buttons(2, prefix="b"), "block_id": "blk-a"}], "block_id"),
        ([{"type": "divider"}] * 51, "no more than 50 items"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": _long(3001)}}], "3001"),
        ([{"type": "actions", "elements": [{**buttons(1)["elements"][0], "value": _long(2001)}]}], "2001"),  # noqa: E501
        ([{"type": "actions", "elements": [{**buttons(1)["elements"][0], "action_id": _long(256)}]}], "action_id"),  # noqa: E501
        ([{"type": "actions", "elements": [{**buttons(1)["elements"][0], "text": {"type": "mrkdwn", "text": "x"}}]}], "plain_text"),  # noqa: E501
        ([{"type": "fancy"}], "unsupported block type"),
    ],
)  # fmt: skip
async def test_invalid_blocks(fake: FakeSlack, blocks: list[JSON], needle: str) -> None:
    with pytest.raises(SlackApiError) as e:
        await client(fake).chat_postMessage(channel="C0STAFF", text="q", blocks=blocks)
    assert e.value.response["error"] == "invalid_blocks"
    assert any(needle in err for err in e.value.response["errors"]), e.value.response["errors"]
    assert fake.posts == []


def test_valid_blocks_pass() -> None:
    assert validate_blocks(QUESTION) == []
    assert validate_blocks([buttons(25, text=_long(75))]) == []


async def test_auth_errors(fake: FakeSlack) -> None:
    cases = [
        (client(fake, "xoxb-wrong").auth_test(), "invalid_auth"),
        (AsyncWebClient(base_url=fake.base_url).auth_test(), "not_authed"),
        (client(fake, fake.app_token).chat_postMessage(channel="C0STAFF", text="x"), "not_allowed_token_type"),  # noqa: E501
        (client(fake).apps_connections_open(app_token=fake.bot_token), "not_allowed_token_type"),
        (client(fake).apps_connections_open(app_token="xapp-wrong"), "invalid_auth"),
    ]  # fmt: skip
    for coro, error in cases:
        with pytest.raises(SlackApiError) as e:
            await coro
        assert e.value.response["error"] == error
    opened = await client(fake).apps_connections_open(app_token=fake.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{fake.port}/socket?ticket=")


async def test_form_body_with_token_field(fake: FakeSlack) -> None:
    # Older clients send form bodies with `token` and JSON-encoded `blocks`.
    form = {"token": fake.bot_token, "channel": "C0STAFF", "blocks": json.dumps(QUESTION)}
    async with aiohttp.ClientSession() as s:
        async with s.post(fake.base_url + "chat.postMessage", data=form) as r:
            body = await r.json()
        assert body["ok"] is True and body["message"]["blocks"] == QUESTION
        form["blocks"] = json.dumps([buttons(26)])
        async with s.post(fake.base_url + "chat.postMessage", data=form) as r:
            assert (await r.json())["error"] == "invalid_blocks"


async def test_rate_limit_is_retried(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", n=1, retry_after=0)
    with pytest.raises(SlackApiError) as e:
        await client(fake).chat_postMessage(channel="C0STAFF", text="x")
    assert e.value.response.status_code == 429 and e.value.response["error"] == "ratelimited"
    assert e.value.response.headers["Retry-After"] == "0"

    fake.fail_next("chat.postMessage", n=2, retry_after=0)
    c = client(fake)
    c.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    resp = await c.chat_postMessage(channel="C0STAFF", text="after retry")
    assert resp["ok"] and [p["text"] for p in fake.posts] == ["after retry"]
    statuses = [x.status for x in fake.calls if x.method == "chat.postMessage"]
    assert statuses == [429, 429, 429, 200]


async def test_response_url(fake: FakeSlack) -> None:
    dm = (await client(fake).chat_postMessage(channel="U0CUST", blocks=QUESTION, text="Q"))["ts"]
    payload = fake.build_block_actions("U0CUST", dm, "b9")
    assert payload["actions"][0]["value"] == "9" and payload["message"]["ts"] == dm
    async with aiohttp.ClientSession() as s:
        body = {"replace_original": True, "text": "You chose 9"}
        async with s.post(payload["response_url"], json=body) as r:
            assert r.status == 200
        async with s.post(payload["response_url"], json={"text": "only you"}) as r:
            assert r.status == 200
        async with s.post(payload["response_url"], json={"blocks": [buttons(26)]}) as r:
            assert (r.status, await r.text()) == (400, "invalid_blocks")
        async with s.post(fake.url + "/response/nope", json={"text": "x"}) as r:
            assert r.status == 404
    msg = fake.messages[fake.dm_channel("U0CUST")][-1]
    assert msg["text"] == "You chose 9" and "blocks" not in msg
    assert fake.ephemerals[-1]["text"] == "only you" and fake.ephemerals[-1]["user"] == "U0CUST"
    assert [r["body"].get("replace_original") for r in fake.responses] == [True, None, None]
    with pytest.raises(LookupError):
        fake.build_block_actions("U0CUST", dm, "b9")  # the buttons are gone now


def make_app(fake: FakeSlack, seen: list[tuple[str, Any]], **kw: Any) -> AsyncApp:
    app = AsyncApp(client=client(fake), signing_secret=fake.signing_secret, **kw)

    @app.command("/survey")
    async def survey(ack: Any, body: JSON, respond: Any, client: AsyncWebClient) -> None:
        await ack()
        seen.append(("command", body["text"]))
        dm = (await client.conversations_open(users=body["text"]))["channel"]["id"]
        await client.chat_postMessage(channel=dm, text="How likely…?", blocks=QUESTION)
        await respond(f"Survey sent to <@{body['text']}>")

    @app.action({"action_id": "b9"})
    async def clicked(ack: Any, body: JSON, client: AsyncWebClient) -> None:
        await ack()
        seen.append(("action", body["actions"][0]["value"]))
        c = body["container"]
        await client.chat_update(channel=c["channel_id"], ts=c["message_ts"], text="You chose 9")

    @app.event("message")
    async def message(event: JSON, say: Any, context: Any, request: Any) -> None:
        retry = request.headers.get("x-slack-retry-num", [None])[0]  # bolt headers are lists
        seen.append(("message", (event["text"], retry)))
        await say("Thanks!")

    return app


async def test_bolt_socket_mode_end_to_end(fake: FakeSlack) -> None:
    seen: list[tuple[str, Any]] = []
    app = make_app(fake, seen)
    handler = AsyncSocketModeHandler(app, fake.app_token, logger=logging.getLogger("t"))
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        env = await fake.slash_command("U0STAFF", "U0CUST")
        assert await fake.wait_ack(env) == {}
        dm = fake.dm_channel("U0CUST")
        await fake.wait_for(lambda: fake.ephemerals, what="respond() via response_url")
        assert fake.ephemerals[-1]["text"] == "Survey sent to <@U0CUST>"
        question = fake.bot_messages(dm)[-1]
        assert question["blocks"] == QUESTION

        env = await fake.click("U0CUST", question["ts"], "b9", "9")
        await fake.wait_ack(env["envelope_id"])
        await fake.wait_for(lambda: fake.updates, what="chat.update")
        assert fake.messages[dm][0]["text"] == "You chose 9"

        env = await fake.dm_message("U0CUST", "great service")
        assert env["payload"]["event"]["channel_type"] == "im" and env["retry_attempt"] == 0
        await fake.wait_ack(env)
        again = await fake.redeliver(env)
        assert again["retry_attempt"] == 1 and again["retry_reason"] == "timeout"
        assert again["payload"]["event_id"] == env["payload"]["event_id"]
        await fake.wait_ack(again)
        await fake.wait_for(lambda: len(fake.bot_messages(dm)) == 3, what="two say() replies")
        assert seen == [
            ("command", "U0CUST"),
            ("action", "9"),
            ("message", ("great service", "0")),  # bolt mirrors retry_attempt=0 as a header
            ("message", ("great service", "1")),
        ]

        # Slack asks for a reconnect; the SDK opens a new URL and keeps working.
        opens = sum(c.method == "apps.connections.open" for c in fake.calls)
        await fake.disconnect()
        await fake.wait_for(
            lambda: sum(c.method == "apps.connections.open" for c in fake.calls) > opens
        )
        env = await fake.dm_message("U0CUST", "still there?")
        await fake.wait_ack(env)
        assert fake.protocol_errors == []
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def test_bolt_http_mode(fake: FakeSlack) -> None:
    seen: list[tuple[str, Any]] = []
    app = make_app(fake, seen)

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", endpoint)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/slack/events"  # type: ignore[union-attr]
    try:
        secret = fake.signing_secret
        cmd = fake.build_slash_command("U0STAFF", "U0CUST")
        assert (await send_http(url, slash_command_http(cmd, secret)))[0] == 200
        forged = slash_command_http(cmd, "not-the-secret")
        assert (await send_http(url, forged))[0] == 401
        dm = fake.dm_channel("U0CUST")
        await fake.wait_for(lambda: fake.bot_messages(dm), what="question")
        click = fake.build_block_actions("U0CUST", fake.bot_messages(dm)[-1], "b9")
        assert (await send_http(url, block_actions_http(click, secret)))[0] == 200
        event = fake.build_dm_message("U0CUST", "hello")
        assert (await send_http(url, events_http(event, secret)))[0] == 200
        assert (await send_http(url, events_http(event, secret, retry_num=1)))[0] == 200
        await fake.wait_for(lambda: len(seen) == 4 and len(fake.bot_messages(dm)) == 3)
        assert seen[2:] == [("message", ("hello", None)), ("message", ("hello", "1"))]
    finally:
        await runner.cleanup()


def test_signed_headers_accepted_by_sdk_verifier() -> None:
    body = b"token=x&command=%2Fsurvey&text=csat"
    headers = signed_headers(body, "s3cret")
    verifier = SignatureVerifier("s3cret")
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b"x", headers)
    stale = signed_headers(body, "s3cret", timestamp=1_000_000)
    assert not verifier.is_valid_request(body, stale)  # older than 5 minutes
    req = events_http({"type": "event_callback"}, "s3cret", retry_num=2)
    assert req.headers["X-Slack-Retry-Num"] == "2"
    assert req.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert verifier.is_valid_request(req.body, req.headers)


async def test_wait_for_times_out_with_dump(fake: FakeSlack) -> None:
    with pytest.raises(AssertionError, match="FakeSlack state"):
        await fake.wait_for(lambda: False, timeout=0.05, what="nothing")
    fake.connect_timeout = 0.05
    with pytest.raises(AssertionError, match="a Socket Mode connection"):
        await fake.dm_message("U0CUST", "nobody is connected")
