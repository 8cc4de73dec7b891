"""The pure parts of surveys in support threads: what a reaction, a shortcut or a thread reply
means, who a thread's requester is, each channel's settings, the language of a customer's own
words, and the Slack app manifest asking for what the listeners need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bot.platforms.language import detect
from bot.platforms.slack.threads import (
    SHORTCUT_ID,
    from_thread_reply,
    reaction_trigger,
    shortcut_trigger,
    thread_key,
    thread_of,
)
from bot.settings import SlackConfig

JSON = dict[str, Any]
ROOT = Path(__file__).resolve().parents[3]


def reaction(**event: Any) -> JSON:
    base = {"type": "reaction_added", "user": "U0STAFF", "reaction": "white_check_mark",
            "item": {"type": "message", "channel": "C1", "ts": "100.1"}}  # fmt: skip
    return {"type": "event_callback", "event_id": "Ev9", "event": base | event}


def test_a_reaction_on_a_message_is_a_trigger_and_other_reactions_are_not() -> None:
    trigger = reaction_trigger(reaction())
    assert trigger is not None
    assert (trigger.via, trigger.staff_id, trigger.channel, trigger.message_ts) == (
        "reaction", "U0STAFF", "C1", "100.1",
    )  # fmt: skip
    assert (trigger.reaction, trigger.delivery_id) == ("white_check_mark", "Ev9")
    assert reaction_trigger(reaction(type="reaction_removed")) is None  # answers stay
    assert reaction_trigger(reaction(item={"type": "file", "file": "F1"})) is None


def test_a_message_shortcut_is_a_trigger_with_its_response_url() -> None:
    body = {"type": "message_action", "callback_id": SHORTCUT_ID, "trigger_id": "t1",
            "user": {"id": "U0STAFF"}, "channel": {"id": "C1"}, "message_ts": "100.2",
            "response_url": "https://hooks.example/r/1"}  # fmt: skip
    trigger = shortcut_trigger(body)
    assert trigger is not None and trigger.via == "shortcut"
    assert (trigger.message_ts, trigger.response_url) == ("100.2", "https://hooks.example/r/1")
    assert shortcut_trigger(body | {"type": "shortcut"}) is None  # a global shortcut


def test_the_requester_is_the_author_of_the_root_and_their_words_are_collected() -> None:
    messages = [
        {"ts": "100.1", "thread_ts": "100.1", "user": "U0EXT", "text": "Γεια σας, βοήθεια",
         "user_team": "T0ACME", "user_profile": {"display_name": "niko"}},
        {"ts": "100.2", "thread_ts": "100.1", "user": "U0STAFF", "text": "Fixed"},
        {"ts": "100.3", "thread_ts": "100.1", "user": "U0EXT", "text": "ευχαριστώ &amp; γεια"},
    ]  # fmt: skip
    thread = thread_of("C1", messages)
    assert thread is not None
    assert (thread.root_ts, thread.requester, thread.requester_team) == ("100.1", "U0EXT", "T0ACME")
    assert thread.requester_name == "niko"
    assert thread.words == "Γεια σας, βοήθεια ευχαριστώ & γεια"
    bot_root = {"ts": "1.0", "bot_id": "B1", "user": "U0BOT", "text": "Deploy done"}
    joined = {"ts": "1.0", "subtype": "channel_join", "user": "U1", "text": "joined"}
    for root in (bot_root, joined):  # no customer asked anything
        nobody = thread_of("C1", [root])
        assert nobody is not None and nobody.requester is None
    assert thread_of("C1", []) is None
    assert thread_key("C1", "100.1") == "slack-thread:C1:100.1"


def test_a_reply_in_a_channel_thread_is_an_ambient_answer_and_nothing_else_is() -> None:
    event = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U0EXT",
             "text": "took 2 days &lt;sigh&gt;", "ts": "100.5", "thread_ts": "100.1"}  # fmt: skip
    body = {"type": "event_callback", "event_id": "Ev5", "event": event}
    incoming = from_thread_reply(body)
    assert incoming is not None
    inbound = incoming.inbound
    assert (inbound.kind, inbound.chat_id, inbound.thread_id, inbound.ambient) == (
        "text", "C1", "100.1", True,
    )  # fmt: skip
    assert (inbound.text, inbound.event_id) == ("took 2 days <sigh>", "slack:Ev5")
    for change in ({"thread_ts": None}, {"thread_ts": "100.5"}, {"subtype": "message_changed"},
                   {"bot_id": "B1"}, {"channel_type": "im"}):  # fmt: skip
        assert from_thread_reply(body | {"event": event | change}) is None, change


def test_each_channel_takes_its_own_settings_over_the_defaults() -> None:
    config = SlackConfig.model_validate({
        "threads": {"flow": "csat", "reaction": ":white_check_mark:"},
        "channels": {"C0ACME": {"locale": "el", "flow": "nps"}, "C0QUIET": {"reaction": None}},
    })  # fmt: skip
    assert config.for_channel("C0ANY").model_dump() == {
        "flow": "csat",
        "reaction": "white_check_mark",
        "locale": None,
    }
    assert config.for_channel("C0ACME").model_dump() == {
        "flow": "nps",
        "reaction": "white_check_mark",
        "locale": "el",
    }
    assert config.for_channel("C0QUIET").reaction is None  # reactions off there


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Γεια σας, δεν μπορώ να συνδεθώ στον λογαριασμό μου από χθες", "el"),
        ("Sveiki, neatėjo sąskaita faktūra už spalį", "lt"),
        ("Hi, the export button does nothing since the update", "en"),
        ("ok", None),  # too short to tell: the caller falls back
        ("👍👍", None),
    ],
)
def test_the_language_of_a_customers_own_words(text: str, language: str | None) -> None:
    assert detect(text) == language


def test_the_manifest_asks_for_what_the_thread_listeners_need() -> None:
    manifest = YAML(typ="safe").load((ROOT / "slack-manifest.yaml").read_text(encoding="utf-8"))
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"reactions:read", "channels:history", "groups:history", "chat:write"} <= scopes
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"reaction_added", "message.channels", "message.groups", "message.im"} <= events
    (shortcut,) = manifest["features"]["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"]) == ("message", SHORTCUT_ID)
