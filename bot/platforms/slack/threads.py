"""Pure translation for surveys in Slack support threads: a ``reaction_added`` event or a
"Send survey" message shortcut becomes a :class:`ThreadTrigger`; ``conversations.replies``
becomes the :class:`Thread` (its root, requester and the requester's own words); a reply in a
thread becomes an ambient :class:`~bot.chat.Inbound` (an answer only while a typed answer is
awaited). Nothing here talks to Slack: :mod:`bot.platforms.slack.support` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.chat import Inbound
from bot.platforms.slack.blocks import Incoming, unescape

JSON = dict[str, Any]
SHORTCUT_ID = "send_survey"  # callback_id of the message shortcut in slack-manifest.yaml


@dataclass(frozen=True)
class ThreadTrigger:
    """Staff asked for a survey in the thread of ``message_ts`` in ``channel``."""

    via: Literal["reaction", "shortcut"]
    staff_id: str
    channel: str
    message_ts: str
    delivery_id: str | None = None  # event id (reaction) or trigger id (shortcut)
    reaction: str | None = None  # the emoji name, for a reaction
    response_url: str | None = None  # a shortcut's, for answers to the staff member


@dataclass(frozen=True)
class Thread:
    """A support thread as surveybot needs it: where it is, who asked, in which words."""

    channel: str
    root_ts: str
    requester: str | None  # the root message's author; None for a bot's or system message
    requester_team: str | None = None
    requester_name: str | None = None  # from the message's user_profile, when Slack sent it
    words: str = ""  # the requester's own messages in the thread, for language detection


def reaction_trigger(body: JSON) -> ThreadTrigger | None:
    """A ``reaction_added`` event on a message, or None for anything else (a reaction on a
    file, a removed reaction: removing it never deletes a survey or its answers)."""
    event = body.get("event") or {}
    item = event.get("item") or {}
    if (
        event.get("type") != "reaction_added"
        or item.get("type") != "message"
        or not item.get("channel")
        or not item.get("ts")
        or not event.get("user")
    ):
        return None
    return ThreadTrigger(
        via="reaction", staff_id=str(event["user"]), channel=str(item["channel"]),
        message_ts=str(item["ts"]), delivery_id=_str(body.get("event_id")),
        reaction=_str(event.get("reaction")),
    )  # fmt: skip


def shortcut_trigger(body: JSON) -> ThreadTrigger | None:
    """A ``message_action`` payload (the "Send survey" item of a message's ⋯ menu)."""
    channel = (body.get("channel") or {}).get("id")
    ts = body.get("message_ts") or (body.get("message") or {}).get("ts")
    user = (body.get("user") or {}).get("id")
    if body.get("type") != "message_action" or not channel or not ts or not user:
        return None
    return ThreadTrigger(
        via="shortcut", staff_id=str(user), channel=str(channel), message_ts=str(ts),
        delivery_id=_str(body.get("trigger_id")), response_url=_str(body.get("response_url")),
    )  # fmt: skip


def root_ts_of(message: JSON) -> str:
    """The ts of the thread a message belongs to (its own ts when it starts or has none)."""
    return str(message.get("thread_ts") or message["ts"])


def thread_of(channel: str, messages: list[JSON]) -> Thread | None:
    """The thread from ``conversations.replies`` (root first), or None when Slack gave no
    messages. A root written by a bot or by Slack itself (a subtype such as channel_join) has
    no requester."""
    if not messages:
        return None
    root_ts = root_ts_of(messages[0])
    root = next((m for m in messages if str(m.get("ts")) == root_ts), messages[0])
    human = not root.get("bot_id") and not root.get("subtype") and bool(root.get("user"))
    requester = str(root["user"]) if human else None
    profile = root.get("user_profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or None
    words = " ".join(
        unescape(str(m.get("text") or ""))
        for m in messages
        if requester and m.get("user") == requester and not m.get("subtype")
    )
    return Thread(
        channel=channel, root_ts=root_ts, requester=requester,
        requester_team=_str(root.get("user_team") or root.get("team")),
        requester_name=name, words=words.strip(),
    )  # fmt: skip


def thread_key(channel: str, root_ts: str) -> str:
    """The idempotency key of a thread's survey: one survey per thread, whoever asks, however
    often (a second ✅, the shortcut after a ✅, a redelivered event)."""
    return f"slack-thread:{channel}:{root_ts}"


def from_thread_reply(body: JSON) -> Incoming | None:
    """A person's reply in a channel thread: an ambient answer (counted only when it is the
    survey's addressee and a typed answer is awaited). Top-level channel messages, edits,
    bot messages and DMs are not (None)."""
    event = body.get("event") or {}
    thread_ts = event.get("thread_ts")
    if (
        event.get("type") != "message"
        or event.get("channel_type") not in ("channel", "group")
        or not thread_ts
        or thread_ts == event.get("ts")
        or event.get("subtype")
        or event.get("bot_id")
        or not event.get("user")
    ):
        return None
    channel = str(event.get("channel") or "")
    text = unescape(str(event.get("text") or "")).strip()
    event_id = body.get("event_id")
    inbound = Inbound(
        platform="slack", kind="skip" if text.lower() == "/skip" else "text",
        user_id=str(event["user"]), chat_id=channel, thread_id=str(thread_ts), text=text,
        event_id=f"slack:{event_id}" if event_id else None, ambient=True,
    )  # fmt: skip
    return Incoming(inbound, channel)


def _str(value: object) -> str | None:
    return str(value) if value else None
