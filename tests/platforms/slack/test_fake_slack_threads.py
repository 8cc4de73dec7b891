"""Support channels in the fake Slack, proven with the real slack-sdk and slack-bolt: threads
(``thread_ts``, conversations.replies), reactions, message shortcuts, replies in threads and
external Slack Connect users who cannot be looked up or DMed unless configured so."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack

JSON = dict[str, Any]
SUPPORT = "C0SUPPORT"  # a Slack Connect channel shared with the customer's company
STAFF, CUSTOMER, COLLEAGUE = "U0STAFF", "W0EXTCUST", "U0AMY"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        f.user(STAFF, "stella")
        f.user(COLLEAGUE, "amy")
        f.external_user(CUSTOMER, "kostas", team_id="T0ACME", locale="el-GR")
        f.channel(SUPPORT, "acme-support", shared=True)
        yield f


def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)


async def test_a_reply_in_a_thread_and_conversations_replies(fake: FakeSlack) -> None:
    c = client(fake)
    # built, not delivered: no app is connected in this test
    root = fake.build_channel_message(CUSTOMER, SUPPORT, "Το τιμολόγιο είναι λάθος")
    root_ts = root["event"]["ts"]
    posted = await c.chat_postMessage(channel=SUPPORT, thread_ts=root_ts, text="Rate us?")
    assert posted["message"]["thread_ts"] == root_ts
    reply = fake.build_channel_message(CUSTOMER, SUPPORT, "Καλά ήταν", thread_ts=root_ts)
    event = reply["event"]
    assert (event["thread_ts"], event["parent_user_id"]) == (root_ts, CUSTOMER)
    assert event["channel_type"] == "channel" and event["user_team"] == "T0ACME"
    assert reply["is_ext_shared_channel"] is True

    thread = (await c.conversations_replies(channel=SUPPORT, ts=root_ts))["messages"]
    assert [m["text"] for m in thread] == ["Το τιμολόγιο είναι λάθος", "Rate us?", "Καλά ήταν"]
    assert thread[0]["reply_count"] == 2 and thread[0]["reply_users"] == ["U0BOT", CUSTOMER]
    # a reply's ts names its thread too
    by_reply = await c.conversations_replies(channel=SUPPORT, ts=posted["ts"])
    assert len(by_reply["messages"]) == 3
    for call in (
        c.chat_postMessage(channel=SUPPORT, thread_ts="1.000000", text="x"),
        c.conversations_replies(channel=SUPPORT, ts="1.000000"),
    ):
        with pytest.raises(SlackApiError) as err:
            await call
        assert err.value.response["error"] == "thread_not_found"
    with pytest.raises(SlackApiError) as err:
        await c.conversations_replies(channel="C404", ts=root_ts)
    assert err.value.response["error"] == "channel_not_found"


async def test_external_users_cannot_be_looked_up_or_dmed_unless_configured(
    fake: FakeSlack,
) -> None:
    c = client(fake)
    for call, error in (
        (c.users_info(user=CUSTOMER), "user_not_found"),
        (c.conversations_open(users=CUSTOMER), "user_not_found"),
    ):
        with pytest.raises(SlackApiError) as err:
            await call
        assert err.value.response["error"] == error
    fake.external_user("W0SEEN", "maria", team_id="T0ACME", visible=True)
    info = (await c.users_info(user="W0SEEN", include_locale=True))["user"]
    assert (info["team_id"], info["is_stranger"], info["locale"]) == ("T0ACME", True, "en-US")
    with pytest.raises(SlackApiError) as err:
        await c.conversations_open(users="W0SEEN")
    assert err.value.response["error"] == "invalid_user_combination"
    fake.external_user("W0OPEN", "jonas", team_id="T0ACME", visible=True, dm=True)
    assert (await c.conversations_open(users="W0OPEN"))["channel"]["is_im"] is True


async def test_bolt_gets_reactions_shortcuts_and_thread_replies(fake: FakeSlack) -> None:
    seen: list[tuple[str, Any]] = []
    app = AsyncApp(client=client(fake), signing_secret=fake.signing_secret)

    @app.event("reaction_added")
    async def reacted(event: JSON) -> None:
        item = event["item"]
        seen.append(
            ("reaction", (event["user"], event["reaction"], item["ts"], event["item_user"]))
        )

    @app.event("reaction_removed")
    async def unreacted(event: JSON) -> None:
        seen.append(("unreaction", event["reaction"]))

    @app.shortcut("send_survey")
    async def shortcut(ack: Any, body: JSON, respond: Any) -> None:
        await ack()
        seen.append(("shortcut", (body["type"], body["user"]["id"], body["message"]["ts"])))
        await respond("Survey sent")

    @app.event("message")
    async def message(event: JSON) -> None:
        seen.append(("message", (event["user"], event.get("thread_ts"), event["text"])))

    handler = AsyncSocketModeHandler(app, fake.app_token, logger=logging.getLogger("t"))
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        root = await fake.channel_message(CUSTOMER, SUPPORT, "Help!")
        ts = root["payload"]["event"]["ts"]
        for env in (
            await fake.react(STAFF, SUPPORT, ts, "white_check_mark"),
            await fake.shortcut(STAFF, SUPPORT, ts, "send_survey"),
            await fake.thread_reply(CUSTOMER, SUPPORT, ts, "Thanks, solved"),
            await fake.unreact(STAFF, SUPPORT, ts, "white_check_mark"),
        ):
            await fake.wait_ack(env)
        await fake.wait_for(lambda: len(seen) == 5 and fake.ephemerals, what="all handled")
        assert sorted(map(repr, seen)) == sorted(map(repr, [
            ("message", (CUSTOMER, None, "Help!")),
            ("reaction", (STAFF, "white_check_mark", ts, CUSTOMER)),
            ("shortcut", ("message_action", STAFF, ts)),
            ("message", (CUSTOMER, ts, "Thanks, solved")),
            ("unreaction", "white_check_mark"),
        ]))  # fmt: skip
        assert fake.ephemerals[-1]["text"] == "Survey sent" and fake.ephemerals[-1]["user"] == STAFF
        assert "reactions" not in fake.message(SUPPORT, ts)  # taken back
        assert fake.protocol_errors == []
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def test_reactions_are_kept_on_the_message_like_slack(fake: FakeSlack) -> None:
    root = fake.build_channel_message(CUSTOMER, SUPPORT, "Help!")["event"]
    fake.build_reaction(STAFF, SUPPORT, root["ts"], "white_check_mark")
    fake.build_reaction(COLLEAGUE, SUPPORT, root["ts"], "white_check_mark")
    fake.build_reaction(STAFF, SUPPORT, root["ts"], "white_check_mark")  # already there
    assert fake.message(SUPPORT, root["ts"])["reactions"] == [  # type: ignore[index]
        {"name": "white_check_mark", "users": [STAFF, COLLEAGUE], "count": 2}
    ]
    with pytest.raises(LookupError):
        fake.build_reaction(STAFF, SUPPORT, "1.000000", "eyes")
