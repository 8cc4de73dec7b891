"""What the fake Bot API knows and what tests do with it: users, chats and their messages, the
update queue, and the builders with which a test acts as a Telegram user (``send_text``,
``tap``, ``inject_raw``, ``redeliver``). HTTP and the Bot API methods live in
``telegram_api`` / ``telegram_methods``; this module has no I/O.

The update queue behaves like Telegram's: an update stays until a getUpdates with a higher
``offset`` confirms it (or a webhook POST is answered 2xx), so a bot that crashes before
confirming gets it again.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from tests.fakes.server import FakeServer
from tests.fakes.telegram_checks import JSONDict


@dataclass
class FakeUser:
    id: int
    first_name: str
    language_code: str | None = "en"
    username: str | None = None
    started: bool = True  # pressed Start (or wrote to the bot): the bot may message them
    blocked: bool = False

    def as_dict(self) -> JSONDict:
        optional = {"username": self.username, "language_code": self.language_code}
        return {"id": self.id, "is_bot": False, "first_name": self.first_name} | {
            key: value for key, value in optional.items() if value
        }


class Call(NamedTuple):
    method: str  # as requested, e.g. "sendMessage"
    at: float  # time.monotonic() when the request arrived
    params: JSONDict  # as received: form values are strings, nested objects JSON strings
    status: int  # HTTP status of the answer


class TelegramState(FakeServer):
    """Users, chats, messages and pending updates of the fake Bot API."""

    def __init__(self, token: str, bot_username: str) -> None:
        super().__init__()
        self.token, self.bot_username = token, bot_username
        self.bot_id = int(token.split(":")[0])
        self.bot_user = {"id": self.bot_id, "is_bot": True, "first_name": "Surveybot Test",
                         "username": bot_username}  # fmt: skip
        self.users: dict[int, FakeUser] = {}
        self.sent: list[JSONDict] = []  # chat_id, message_id, text, parse_mode, reply_markup
        self.edits: list[JSONDict] = []  # method, chat_id, message_id, text, reply_markup
        self.callback_answers: list[JSONDict] = []  # callback_query_id, text, show_alert
        self.callback_latency: dict[str, float] = {}  # query id -> seconds from tap to answer
        self._tapped_at: dict[str, float] = {}
        self.calls: list[Call] = []
        self.webhook_url: str | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, status; 0 = no answer)
        self.deliver_updates = True  # False: updates are built and returned, never delivered
        self.clock: Callable[[], float] = time.monotonic  # what the rate limits measure with
        self._chats: dict[int, JSONDict] = {}
        self._messages: dict[int, dict[int, JSONDict]] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._topics: dict[int, dict[int, str]] = {}  # chat id -> thread id -> name
        self._pending: list[list[Any]] = []  # [update, redelivered and not yet returned]
        self._updates: dict[int, JSONDict] = {}
        self._open_queries: set[str] = set()
        self._update_ids = itertools.count(700_000_001)
        self._query_ids = itertools.count(4_382_000_000_000_000_001)

    # ---- acting as Telegram users ----------------------------------------------------------
    def user(self, id: int, first_name: str, language_code: str | None = "en",
             username: str | None = None, started: bool = True) -> FakeUser:  # fmt: skip
        self.users[id] = user = FakeUser(id, first_name, language_code, username, started)
        self._chats[id] = {"id": id, "type": "private", "first_name": first_name}
        if username:
            self._chats[id]["username"] = username
        return user

    def group(self, chat_id: int, title: str, *, forum: bool = False) -> JSONDict:
        """A group (a supergroup when the id starts with -100; ``forum``: topics enabled)."""
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        self._chats[chat_id] = chat = {"id": chat_id, "type": kind, "title": title}
        if forum:
            chat["is_forum"] = True
        return chat

    def topic(self, chat_id: int, thread_id: int, name: str) -> None:
        """A forum topic in a forum supergroup (see ``group(..., forum=True)``)."""
        if not self._chats[chat_id].get("is_forum"):
            raise ValueError(f"chat {chat_id} is not a forum")
        self._topics.setdefault(chat_id, {})[thread_id] = name

    def send_text(self, user: FakeUser | int, text: str, chat: int | None = None,
                  reply_to_message_id: int | None = None,
                  thread: int | None = None) -> JSONDict:  # fmt: skip
        """The user writes ``text`` (private chat unless ``chat``; in forum topic ``thread``);
        returns the Update."""
        sender = self.users[user] if isinstance(user, int) else user
        chat_obj = self._chats[sender.id if chat is None else chat]
        if chat_obj["type"] == "private":
            sender.started, sender.blocked = True, False
        extra: JSONDict = {}
        if reply_to_message_id is not None:
            extra["reply_to_message"] = self._replied(chat_obj["id"], reply_to_message_id)
            if extra["reply_to_message"] is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_obj['id']}")
        if thread is not None:
            if thread not in self._topics.get(chat_obj["id"], {}):
                raise ValueError(f"no topic {thread} in chat {chat_obj['id']}")
            extra.update(message_thread_id=thread, is_topic_message=True)
        if text.startswith("/"):
            command = text.split()[0]
            extra["entities"] = [{"type": "bot_command", "offset": 0,
                                  "length": len(command.encode("utf-16-le")) // 2}]  # fmt: skip
        return self._enqueue({"message": self._store(chat_obj, sender.as_dict(), text, extra)})

    def tap(self, user: FakeUser | int, message: Mapping[str, Any] | int, data: str,
            *, strict: bool = True) -> JSONDict:  # fmt: skip
        """Tap a button of a bot message (a Message dict, a ``sent`` entry or a message id in
        the user's private chat); ``strict``: the message must show that button right now."""
        sender = self.users[user] if isinstance(user, int) else user
        if isinstance(message, int):
            chat_id, message_id = sender.id, message
        else:
            chat_id = message["chat"]["id"] if "chat" in message else message["chat_id"]
            message_id = message["message_id"]
        current = self._messages.get(chat_id, {}).get(message_id)
        if current is None or current["from"]["id"] != self.bot_id:
            raise ValueError(f"no bot message {message_id} in chat {chat_id}")
        rows = current.get("reply_markup", {}).get("inline_keyboard", [])
        buttons = [button.get("callback_data") for row in rows for button in row]
        if strict and data not in buttons:
            raise ValueError(f"message {message_id} has no button {data!r}; buttons: {buttons}")
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        self._tapped_at[query_id] = time.monotonic()
        return self._enqueue({"callback_query": {
            "id": query_id, "from": sender.as_dict(), "message": copy.deepcopy(current),
            "chat_instance": str(abs(chat_id) * 7919), "data": data}})  # fmt: skip

    def inject_raw(self, body: JSONDict) -> JSONDict:
        """Queue an update exactly as given (``update_id`` added when missing): the way to
        send what the installed python-telegram-bot cannot parse — see ``unparseable``."""
        update = {"update_id": next(self._update_ids)} | copy.deepcopy(body)
        return self._enqueue(update, raw=True)

    def unparseable(self, user: FakeUser | int, kind: str = "reply_without_date") -> JSONDict:
        """Queue a poison update from ``user``'s private chat. python-telegram-bot 22 fails to
        parse ``reply_without_date`` (the replied-to message lacks the required ``date``),
        ``sender_without_name`` (``from`` lacks ``first_name``/``is_bot``) and ``not_an_object``
        (``message`` is a string);
        ``unknown_type`` (an update type newer than the library) parses into an Update that
        carries only ``api_kwargs``, which no handler matches."""
        sender = self.users[user] if isinstance(user, int) else user
        chat = self._chats[sender.id]
        base = {"message_id": 0, "from": sender.as_dict(), "chat": chat, "date": int(time.time())}
        bodies: dict[str, JSONDict] = {
            "reply_without_date": {"message": base | {"text": "hello?", "reply_to_message": {
                "message_id": 1, "chat": chat, "text": "an old message"}}},
            "sender_without_name": {"message": base | {"text": "hi", "from": {"id": sender.id}}},
            "unknown_type": {"purchased_paid_media_v9": {"from": sender.as_dict(),
                                                         "payload": "x" * 40}},
            "not_an_object": {"message": "this is not a Message"},
        }  # fmt: skip
        if kind not in bodies:
            raise ValueError(f"unknown poison kind {kind!r}: {sorted(bodies)}")
        return self.inject_raw(bodies[kind])

    def redeliver(self, update_id: int) -> JSONDict:
        """Telegram sends an update again (its offset was never confirmed, e.g. a crash)."""
        update = copy.deepcopy(self._updates[update_id])
        self._pending.append([update, True])
        self.notify()
        return update

    # ---- assertions --------------------------------------------------------------------------
    @property
    def commands(self) -> list[JSONDict]:
        """Commands set for the default scope and no language_code."""
        return self._commands.get(("default", ""), [])

    @property
    def pending_updates(self) -> list[int]:
        """Ids of the updates not confirmed yet, oldest first."""
        return sorted(entry[0]["update_id"] for entry in self._pending)

    def chat_messages(self, chat_id: int, *, bot_only: bool = False) -> list[JSONDict]:
        """Messages of a chat as they are now (edits applied), oldest first."""
        messages = sorted(self._messages.get(chat_id, {}).items())
        return [copy.deepcopy(m) for _, m in messages
                if not bot_only or m["from"]["id"] == self.bot_id]  # fmt: skip

    def last_sent(self, chat_id: int | None = None) -> JSONDict | None:
        matching = [s for s in self.sent if chat_id is None or s["chat_id"] == chat_id]
        return matching[-1] if matching else None

    def method_calls(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def dump(self) -> str:
        calls = [f"  {c.method} -> {c.status} {json.dumps(c.params, ensure_ascii=False)[:160]}"
                 for c in self.calls if c.method != "getUpdates" or c.status != 200]  # fmt: skip
        sent = [f"  chat {s['chat_id']} #{s['message_id']}: {s['text'][:80]!r}" for s in self.sent]
        return "\n".join(["calls (except successful getUpdates):", *calls[-15:], "sent:",
                          *sent[-15:], f"pending updates: {self.pending_updates}",
                          f"callback answers: {self.callback_answers}",
                          f"webhook {self.webhook_url}: {self.webhook_deliveries}"])  # fmt: skip

    # ---- internals ---------------------------------------------------------------------------
    def _replied(self, chat_id: int, message_id: int) -> JSONDict | None:
        message = self._messages.get(chat_id, {}).get(message_id)
        return None if message is None else {k: v for k, v in message.items()
                                             if k != "reply_to_message"}  # fmt: skip

    def _store(self, chat: JSONDict, sender: JSONDict, text: str, extra: JSONDict) -> JSONDict:
        messages = self._messages.setdefault(chat["id"], {})
        message_id = max(messages, default=0) + 1
        messages[message_id] = {"message_id": message_id, "from": sender, "chat": chat,
                                "date": int(time.time()), "text": text, **extra}  # fmt: skip
        return copy.deepcopy(messages[message_id])

    def _enqueue(self, body: JSONDict, *, raw: bool = False) -> JSONDict:
        update = body if raw else {"update_id": next(self._update_ids), **body}
        self._updates[update["update_id"]] = update
        if self.deliver_updates:
            self._pending.append([copy.deepcopy(update), False])
            self.notify()
        return update
