"""SlackAdapter on its own against the fake Slack: what the runtime can rely on (Sent ids,
DeliveryError kinds, swallowed settle errors, notices, cached locales)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app import services
from bot.chat import (
    Adapter,
    Address,
    Button,
    DeliveryError,
    Inbound,
    Prompt,
    Settled,
    encode_payload,
)
from bot.platforms.slack.adapter import SlackAdapter, make_client
from bot.platforms.slack.runner import SlackSetupError, build_runner
from tests.fakes.slack_api import FakeSlack
from tests.support.slack_support import make_settings

SID = "AbCdEfGhIjKl"
QUESTION = Prompt(
    kind="question", session_id=SID, text="Were you satisfied?",
    rows=((Button(label="Yes", payload=encode_payload(SID, 0, "1")),
           Button(label="No", payload=encode_payload(SID, 0, "0"))),),
)  # fmt: skip
ANSWERED = Settled(question="Were you satisfied?", answer="Your answer: Yes")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        f.user("U0AMY", "amy", locale="en-US")
        f.user("U0NIKOS", "nikos", locale="el-GR")
        f.user("U0GONE", "gone", cannot_dm=True)
        f.user("U0GUEST", "guest", cannot_dm="user_is_restricted")
        yield f


@pytest.fixture
def adapter(fake: FakeSlack) -> SlackAdapter:
    # no trailing slash on purpose: configs are written by people
    return SlackAdapter(make_client(fake.bot_token, fake.base_url.rstrip("/")))


def slack(user: str, chat: str | None = None) -> Address:
    return Address(platform="slack", user_id=user, chat_id=chat)


async def test_it_is_an_adapter_and_sends_into_the_dm(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    assert isinstance(adapter, Adapter)
    sent = await adapter.send(slack("U0AMY"), QUESTION)
    dm = fake.dm_channel("U0AMY")
    assert (sent.chat_id, sent.message_id) == (dm, fake.messages[dm][-1]["ts"])
    await adapter.send(slack("U0AMY"), QUESTION)
    assert [c.method for c in fake.calls].count("conversations.open") == 1  # remembered


async def test_in_a_channel_the_customer_is_mentioned(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    sent = await adapter.send(slack("U0AMY", "C0STAFF"), QUESTION)
    assert sent.chat_id == "C0STAFF"
    assert fake.messages["C0STAFF"][-1]["text"] == "<@U0AMY> Were you satisfied?"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (slack("U0GONE"), "their account is deactivated (Slack: user_disabled)"),
        (slack("U0GUEST"), "guests cannot be messaged by the bot (Slack: user_is_restricted)"),
        (slack("U0NOBODY"), "there is no such user in this workspace (Slack: user_not_found)"),
        (slack("U0AMY", "C404"), "cannot find that conversation (Slack: channel_not_found)"),
    ],
)  # fmt: skip
async def test_undeliverable_is_permanent(
    adapter: SlackAdapter, address: Address, message: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await adapter.send(address, QUESTION)
    assert caught.value.permanent and str(caught.value).endswith(message)


async def test_a_bad_token_is_permanent(fake: FakeSlack) -> None:
    adapter = SlackAdapter(make_client("xoxb-wrong", fake.base_url))
    with pytest.raises(DeliveryError, match=r"rejected \(Slack: invalid_auth\)") as caught:
        await adapter.send(slack("U0AMY"), QUESTION)
    assert caught.value.permanent


async def test_persistent_rate_limiting_gives_retry_after(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    fake.fail_next("chat.postMessage", n=3, retry_after=0)
    with pytest.raises(DeliveryError) as caught:
        await adapter.send(slack("U0AMY"), QUESTION)
    assert not caught.value.permanent and caught.value.retry_after == 0.0


async def test_other_slack_errors_and_an_unreachable_slack_are_temporary(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    fake.fail_next("chat.postMessage", error="internal_error")
    with pytest.raises(DeliveryError, match="Slack error: internal_error") as caught:
        await adapter.send(slack("U0AMY"), QUESTION)
    assert not caught.value.permanent
    await fake.stop()
    with pytest.raises(DeliveryError, match="Slack unreachable") as caught:
        await adapter.send(slack("U0AMY"), QUESTION)
    assert not caught.value.permanent and caught.value.retry_after is None


async def test_settle_replaces_buttons_and_swallows_errors(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    sent = await adapter.send(slack("U0AMY"), QUESTION)
    tap = Inbound(platform="slack", kind="tap", user_id="U0AMY", message_id=sent.message_id,
                  ref=f"{sent.chat_id}|gone")  # fmt: skip
    await adapter.settle(tap, ANSWERED)
    assert "blocks" in fake.messages[sent.chat_id][-1]
    assert fake.messages[sent.chat_id][-1]["text"].endswith("Your answer: Yes")
    missing = tap.model_copy(update={"message_id": "1.000001"})
    await adapter.settle(missing, ANSWERED)  # message_not_found: logged, not raised
    await adapter.settle(tap.model_copy(update={"ref": None}), ANSWERED)  # no channel: logged
    assert fake.updates[-1]["text"].endswith("Your answer: Yes")


async def test_notices_go_ephemeral_for_taps_and_as_replies_for_text(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    dm = fake.dm_channel("U0AMY")
    tap = Inbound(platform="slack", kind="tap", user_id="U0AMY", ref=f"{dm}|unknown")
    await adapter.acknowledge(tap, "This button is not valid any more.")
    assert fake.ephemerals[-1] == {
        "channel": dm, "user": "U0AMY", "text": "This button is not valid any more.",
        "blocks": fake.ephemerals[-1]["blocks"], "message_ts": fake.ephemerals[-1]["message_ts"],
        "via": "chat.postEphemeral",
    }  # fmt: skip
    text = Inbound(platform="slack", kind="text", user_id="U0AMY", text="hi")  # no ref: opens DM
    await adapter.acknowledge(text, "There is no survey waiting for you right now.")
    assert fake.bot_messages(dm)[-1]["text"] == "There is no survey waiting for you right now."
    await adapter.acknowledge(text, None)  # nothing to say: nothing sent
    assert len(fake.posts) == 1


async def test_locale_comes_from_users_info_once(fake: FakeSlack, adapter: SlackAdapter) -> None:
    assert await adapter.locale_of(slack("U0NIKOS")) == "el-GR"
    assert await adapter.locale_of(slack("U0NIKOS")) == "el-GR"
    assert await adapter.locale_of(slack("U0NOBODY")) is None
    assert [c.method for c in fake.calls] == ["users.info", "users.info"]
    assert fake.calls[0].args["include_locale"] in ("true", "1", True)


async def test_setup_mistakes_are_named_at_start(
    fake: FakeSlack, tmp_path: Path, flows_dir: Path
) -> None:
    settings = make_settings(fake, tmp_path, flows_dir, "socket")
    async with services(settings.model_copy(update={"slack_app_token": None})) as svc:
        with pytest.raises(SlackSetupError, match="set SURVEYBOT_SLACK_APP_TOKEN"):
            build_runner(svc)
    http = make_settings(fake, tmp_path, flows_dir, "http")
    async with services(http.model_copy(update={"slack_signing_secret": None})) as svc:
        with pytest.raises(SlackSetupError, match="set SURVEYBOT_SLACK_SIGNING_SECRET"):
            build_runner(svc)
    wrong = settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-wrong")})
    async with services(wrong) as svc:
        runner = build_runner(svc)
        with pytest.raises(SlackSetupError, match=r"BOT_TOKEN was rejected \(Slack: invalid_auth"):
            await runner.start()
        assert runner.router() is None  # Socket Mode serves no HTTP route
