"""Pure functions over a raw Telegram update (the JSON dict the Bot API sent), used before
anything parses it: its event id and its ordering key. They never raise: an update that
python-telegram-bot cannot parse must still be stored, listed and quarantined, never block
the updates behind it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.chat import RawEvent

FALLBACK_KEY = "tg:update"


def event_id(update: object) -> str:
    """``tg:<update_id>``; an update without one gets an id from its content."""
    if isinstance(update, dict):
        update_id = update.get("update_id")
        if isinstance(update_id, int) and not isinstance(update_id, bool):
            return f"tg:{update_id}"
    digest = hashlib.sha256(_text(update).encode()).hexdigest()[:24]
    return f"tg:raw:{digest}"


def order_key(update: object) -> str:
    """``tg:<user id>`` of whoever acted (one user's updates are handled in order), else
    ``tg:chat:<id>``, else :data:`FALLBACK_KEY`."""
    user, chat = _sender(update)
    if user is not None:
        return f"tg:{user}"
    return f"tg:chat:{chat}" if chat is not None else FALLBACK_KEY


def _sender(update: object) -> tuple[int | None, int | None]:
    """(user id, chat id) of the update's first object that names them."""
    if not isinstance(update, dict):
        return None, None
    for kind, value in update.items():
        if kind == "update_id" or not isinstance(value, dict):
            continue
        sender = value.get("from") or value.get("user")
        if isinstance(sender, dict) and _is_id(sender.get("id")):
            return int(sender["id"]), None
        chat = value.get("chat")
        if isinstance(chat, dict) and _is_id(chat.get("id")):
            return None, int(chat["id"])
    return None, None


def update_id_of(update: object) -> int | None:
    if isinstance(update, dict) and _is_id(update.get("update_id")):
        return int(update["update_id"])
    return None


def raw_event(update: object) -> RawEvent:
    """One update from getUpdates, ready for the inbox."""
    return _event(update, _text(update))


def body_event(body: bytes) -> RawEvent:
    """A webhook POST body; one that is not a JSON object is stored as it came (poison)."""
    text = body.decode("utf-8", errors="replace")
    try:
        update: Any = json.loads(text)
    except ValueError:
        digest = hashlib.sha256(body).hexdigest()[:24]
        return RawEvent(platform="telegram", event_id=f"tg:raw:{digest}", key=FALLBACK_KEY,
                        body=text)  # fmt: skip
    return _event(update, text)


def _event(update: object, body: str) -> RawEvent:
    user, _ = _sender(update)
    return RawEvent(platform="telegram", event_id=event_id(update), key=order_key(update),
                    body=body, user_id=None if user is None else str(user))  # fmt: skip


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(update: object) -> str:
    try:
        return json.dumps(update, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        return repr(update)
