"""Pure functions over a raw Slack payload (an Events API body, an interaction payload or a
slash command's fields), used before anything else looks at it: its event id and ordering key.
They never raise: a payload nothing can handle is stored all the same and quarantined.

Event ids: ``slack:<event_id>`` for events (a Socket Mode redelivery or an HTTP retry carries
the same one), ``slack:cmd:<trigger_id>`` for slash commands and ``slack:act:<trigger_id>`` for
interactions; anything else gets an id from its content.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.chat import RawEvent

FALLBACK_KEY = "slack:event"


def event_id(payload: object) -> str:
    if isinstance(payload, dict):
        if isinstance(payload.get("event_id"), str):
            return f"slack:{payload['event_id']}"
        trigger = payload.get("trigger_id")
        if isinstance(trigger, str) and trigger:
            return f"slack:{'cmd' if 'command' in payload else 'act'}:{trigger}"
    return f"slack:raw:{hashlib.sha256(_text(payload).encode()).hexdigest()[:24]}"


def order_key(payload: object) -> str:
    """``slack:<user id>`` of whoever acted, else :data:`FALLBACK_KEY`."""
    user = user_of(payload)
    return f"slack:{user}" if user else FALLBACK_KEY


def user_of(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return None
    event = payload.get("event")
    user: Any = None
    if isinstance(event, dict):
        user = event.get("user")
        if isinstance(user, dict):
            user = user.get("id")
    elif isinstance(payload.get("user"), dict):
        user = payload["user"].get("id")
    else:
        user = payload.get("user_id")
    return user if isinstance(user, str) and user else None


def problem(payload: object) -> str | None:
    """Why a stored payload cannot be handled (it is then retried and quarantined), or None.
    A well-formed payload of a kind surveybot does not handle is no problem: it is ignored."""
    if not isinstance(payload, dict):
        return f"a Slack payload must be a JSON object, not {type(payload).__name__}"
    if "envelope_id" in payload:
        return "a Socket Mode envelope without its payload"
    if not isinstance(payload.get("type") or payload.get("command"), str):
        return "a Slack payload with neither a type nor a command"
    if payload.get("type") == "event_callback":
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "an Events API callback whose event has no type"
    return None


def raw_event(payload: object) -> RawEvent:
    return RawEvent(platform="slack", event_id=event_id(payload), key=order_key(payload),
                    body=_text(payload), user_id=user_of(payload))  # fmt: skip


def text_event(text: str) -> RawEvent:
    """Something that did not even decode as a payload: stored as it came (poison)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    return RawEvent(platform="slack", event_id=f"slack:raw:{digest}", key=FALLBACK_KEY,
                    body=text)  # fmt: skip


def _text(payload: object) -> str:
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        return repr(payload)
