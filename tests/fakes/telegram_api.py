"""A strict fake Telegram Bot API server that the real python-telegram-bot talks to over HTTP.

Pass ``fake.base_url`` as PTB's ``base_url`` (our ``telegram.api_base_url``). Tests act as users
with ``send_text`` / ``tap`` and assert on ``sent``, ``chat_messages()``, ``callback_answers``,
``commands`` and ``calls``. Errors carry Telegram's own codes and descriptions.

With ``deliver_updates = False`` the fake only builds updates (``send_text`` / ``tap`` return
them) and delivers nothing itself: a test acting as a load balancer in front of several
webhook workers posts them where it likes.
"""

from __future__ import annotations

import asyncio
import copy
import html
import itertools
import json
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import ClientError, ClientSession, ClientTimeout, web

JSONDict = dict[str, Any]
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
BUTTON_ACTIONS = (
    "url", "callback_data", "login_url", "switch_inline_query", "pay", "web_app", "copy_text",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "callback_game",
)  # fmt: skip
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
             "a", "code", "pre", "blockquote", "tg-emoji"}  # fmt: skip


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


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


class Params:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)

    def get_str(self, name: str) -> str | None:
        return None if self.raw.get(name) is None else str(self.raw[name])

    def get_num(self, name: str, default: int = 0) -> float:
        try:
            return float(self.raw.get(name) or default)
        except (TypeError, ValueError):
            raise bad(f'field "{name}" must be a Number') from None

    def get_bool(self, name: str) -> bool:
        return self.raw.get(name) in (True, "true", "True", "1", 1)

    def get_obj(self, name: str) -> Any:  # JSON bodies carry objects, forms JSON strings
        value = self.raw.get(name)
        try:
            return json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise bad(f"can't parse {name} JSON object") from None

    def chat_id(self) -> int:  # "@channelusername" chats are not faked
        return int(value) if re.fullmatch(r"-?\d+", value := str(self.raw.get("chat_id"))) else 0


def visible_text(text: str | None, parse_mode: str | None) -> str:
    """Text as Telegram keeps it; HTML is checked like Telegram does, Markdown passes as is."""
    if text is None or not text.strip():
        raise bad("message text is empty")
    if (parse_mode or "").lower() == "html":
        stack: list[str] = []
        for tag in re.finditer(r"<(/?)([^\s<>/]*)[^<>]*>?", text):
            name, at = tag.group(2).lower(), len(text[: tag.start()].encode())
            if not tag.group(0).endswith(">") or name not in HTML_TAGS:
                raise bad(f"can't parse entities: Unsupported start tag \"{name}\" at byte "
                          f"offset {at}")  # fmt: skip
            if not tag.group(1):
                stack.append(name)
            elif stack and stack[-1] == name:
                stack.pop()
            else:
                raise bad(f"can't parse entities: Unmatched end tag at byte offset {at}, expected "
                          f'"</{stack[-1] if stack else ""}>", found "</{name}>"')  # fmt: skip
        if stack:
            raise bad(f"can't parse entities: Can't find end tag corresponding to start tag "
                      f'"{stack[-1]}"')  # fmt: skip
        text = html.unescape(re.sub(r"<[^<>]*>", "", text))
    if not text.strip():
        raise bad("message text is empty")
    if len(text) > 4096:
        raise bad("message is too long")
    return text


def check_markup(markup: Any, *, inline_only: bool = False) -> JSONDict | None:
    """Validate reply_markup like Telegram; returns the inline keyboard the message keeps."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:
            raise bad("inline keyboard expected")
        return None  # reply keyboards etc. are accepted but not part of the Message
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    if sum(len(row) for row in rows) > 100:
        raise bad("reply markup is too long")
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise bad('can\'t parse inline keyboard button: Field "text" must be of type String')
        actions = [key for key in BUTTON_ACTIONS if key in button]
        if not actions:
            raise bad("can't parse inline keyboard button: Text buttons are unallowed in the "
                      "inline keyboard")  # fmt: skip
        if len(actions) > 1:
            raise bad(f"can't parse inline keyboard button: exactly one of the optional fields "
                      f"must be used, got {actions}")  # fmt: skip
        data = button.get("callback_data", "-")
        if not (isinstance(data, str) and 1 <= len(data.encode()) <= 64):
            raise bad("BUTTON_DATA_INVALID")
        if "url" in button and not re.match(r"(https?|tg)://\S+$", str(button["url"])):
            raise bad("BUTTON_URL_INVALID")
    rows = [row for row in rows if row]
    return {"inline_keyboard": rows} if rows else None


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-token", bot_username: str = "surveybot_test_bot"):
        self.token, self.bot_username, self.port = token, bot_username, 0
        self.bot_id = int(token.split(":")[0])
        self.bot_user = {"id": self.bot_id, "is_bot": True, "first_name": "Surveybot Test",
                         "username": bot_username}  # fmt: skip
        self.users: dict[int, FakeUser] = {}
        self.sent: list[JSONDict] = []  # chat_id, message_id, text, parse_mode, reply_markup
        self.edits: list[JSONDict] = []  # method, chat_id, message_id, text, reply_markup
        self.callback_answers: list[JSONDict] = []  # callback_query_id, text, show_alert
        self.calls: list[Call] = []
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, status; 0 = no answer)
        self.webhook_max_attempts, self.webhook_retry_delay = 3, 0.05
        self.deliver_updates = True  # False: updates are built and returned, never delivered
        self._chats: dict[int, JSONDict] = {}
        self._messages: dict[int, dict[int, JSONDict]] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._pending: list[list[Any]] = []  # [update, redelivered and not yet returned]
        self._updates: dict[int, JSONDict] = {}
        self._open_queries: set[str] = set()
        self._failures: dict[str, list[int]] = {}
        self._allowed: list[str] | None = None
        self._update_ids = itertools.count(700_000_001)
        self._query_ids = itertools.count(4_382_000_000_000_000_001)
        self._changed = asyncio.Event()
        self._poll_seq, self._closing = 0, False
        self._webhook_error: tuple[int, str] | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self._methods: dict[str, Callable[[Params], Any]] = {
            "getme": lambda p: self.bot_user | {"can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False},
            "getupdates": self._get_updates, "sendmessage": self._send_message,
            "editmessagetext": self._edit_text, "editmessagereplymarkup": self._edit_markup,
            "answercallbackquery": self._answer_callback, "setmycommands": self._set_commands,
            "getmycommands": lambda p: self._commands.get(self._scope_key(p), []),
            "setwebhook": self._set_webhook, "deletewebhook": self._set_webhook,
            "getwebhookinfo": self._webhook_info,
        }  # fmt: skip

    # ---- lifecycle -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._session = ClientSession(timeout=ClientTimeout(total=5))
        self._worker = asyncio.create_task(self._webhook_worker())
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- acting as Telegram users ----------------------------------------------------------
    def user(self, id: int, first_name: str, language_code: str | None = "en",
             username: str | None = None, started: bool = True) -> FakeUser:  # fmt: skip
        self.users[id] = user = FakeUser(id, first_name, language_code, username, started)
        self._chats[id] = {"id": id, "type": "private", "first_name": first_name}
        if username:
            self._chats[id]["username"] = username
        return user

    def group(self, chat_id: int, title: str) -> JSONDict:
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        self._chats[chat_id] = chat = {"id": chat_id, "type": kind, "title": title}
        return chat

    def send_text(self, user: FakeUser | int, text: str, chat: int | None = None,
                  reply_to_message_id: int | None = None) -> JSONDict:  # fmt: skip
        """The user writes ``text`` (private chat unless ``chat``); returns the Update."""
        sender = self.users[user] if isinstance(user, int) else user
        chat_obj = self._chats[sender.id if chat is None else chat]
        if chat_obj["type"] == "private":
            sender.started, sender.blocked = True, False
        extra: JSONDict = {}
        if reply_to_message_id is not None:
            extra["reply_to_message"] = self._replied(chat_obj["id"], reply_to_message_id)
            if extra["reply_to_message"] is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_obj['id']}")
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
        return self._enqueue({"callback_query": {
            "id": query_id, "from": sender.as_dict(), "message": copy.deepcopy(current),
            "chat_instance": str(abs(chat_id) * 7919), "data": data}})  # fmt: skip

    def redeliver(self, update_id: int) -> JSONDict:
        """Telegram sends an update again (its offset was never confirmed, e.g. a crash)."""
        update = copy.deepcopy(self._updates[update_id])
        self._pending.append([update, True])
        self._notify()
        return update

    def fail_next(self, method: str, n: int = 1, retry_after: int = 1) -> None:
        """The next ``n`` calls of ``method`` get 429 Too Many Requests."""
        self._failures[method.lower()] = [n, retry_after]

    # ---- assertions --------------------------------------------------------------------------
    @property
    def commands(self) -> list[JSONDict]:
        """Commands set for the default scope and no language_code."""
        return self._commands.get(("default", ""), [])

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

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Poll ``predicate()`` until truthy and return its value; fail with a state dump."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(f"wait_for timed out after {timeout}s\n{self.dump()}")
            await asyncio.sleep(0.01)
        return result

    def dump(self) -> str:
        calls = [f"  {c.method} -> {c.status} {json.dumps(c.params, ensure_ascii=False)[:160]}"
                 for c in self.calls if c.method != "getUpdates" or c.status != 200]  # fmt: skip
        sent = [f"  chat {s['chat_id']} #{s['message_id']}: {s['text'][:80]!r}" for s in self.sent]
        return "\n".join(["calls (except successful getUpdates):", *calls[-15:], "sent:",
                          *sent[-15:], f"pending updates: {len(self._pending)}",
                          f"callback answers: {self.callback_answers}",
                          f"webhook {self.webhook_url}: {self.webhook_deliveries}"])  # fmt: skip

    # ---- HTTP --------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        arrived, method = time.monotonic(), request.match_info["method"]
        raw: JSONDict = dict(request.query)
        if request.can_read_body and request.content_type == "application/json":
            body = await request.json(loads=lambda s: json.loads(s or "{}"))
            raw.update(body if isinstance(body, dict) else {})
        elif request.can_read_body:  # PTB: x-www-form-urlencoded, multipart with files
            raw.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        handler, failure = self._methods.get(method.lower()), self._failures.get(method.lower())
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            if failure and failure[0] > 0:
                failure[0] -= 1
                raise ApiError(429, f"Too Many Requests: retry after {failure[1]}",
                               {"retry_after": failure[1]})  # fmt: skip
            result = handler(Params(raw))
            result = await result if isinstance(result, Awaitable) else result
            status, payload = 200, {"ok": True, "result": result}
        except ApiError as err:
            status = err.code
            payload = {"ok": False, "error_code": err.code, "description": err.description}
            payload |= {"parameters": err.parameters} if err.parameters else {}
        self.calls.append(Call(method, arrived, raw, status))
        return web.json_response(payload, status=status)

    # ---- methods -----------------------------------------------------------------------------
    async def _get_updates(self, p: Params) -> list[JSONDict]:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")  # fmt: skip
        offset, limit = int(p.get_num("offset")), min(max(int(p.get_num("limit", 100)), 1), 100)
        if (allowed := p.get_obj("allowed_updates")) is not None:
            self._allowed = list(allowed) or None  # remembered, like Telegram does
        self._poll_seq += 1
        me, deadline = self._poll_seq, time.monotonic() + max(p.get_num("timeout"), 0)
        while True:
            changed = self._changed
            if me != self._poll_seq:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure "
                                    "that only one bot instance is running")  # fmt: skip
            if self.webhook_url:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            if offset < 0:
                del self._pending[:offset]
            self._pending = [e for e in self._pending if (e[1] or e[0]["update_id"] >= offset)
                             and (not self._allowed or set(e[0]) & set(self._allowed))]  # fmt: skip
            # redelivered first, each group in update_id order like Telegram: the bot confirms
            # with the last id + 1, which must not leave an earlier one of the batch unconfirmed
            batch = sorted(self._pending, key=lambda e: (not e[1], e[0]["update_id"]))[:limit]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._closing:
                for entry in batch:
                    entry[1] = False
                return [entry[0] for entry in batch]
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    def _send_message(self, p: Params) -> JSONDict:
        chat = self._chat(p)
        text = visible_text(p.get_str("text"), p.get_str("parse_mode"))
        markup, extra = p.get_obj("reply_markup"), {}
        kept = check_markup(markup)  # only inline keyboards stay on the Message
        reply = p.get_obj("reply_parameters")
        if reply is None and p.raw.get("reply_to_message_id"):
            reply = {"message_id": p.get_num("reply_to_message_id")}
        if reply is not None:
            extra["reply_to_message"] = self._replied(chat["id"], int(reply.get("message_id", 0)))
            if extra["reply_to_message"] is None:
                if not (reply.get("allow_sending_without_reply")
                        or p.get_bool("allow_sending_without_reply")):  # fmt: skip
                    raise bad("message to be replied not found")
                del extra["reply_to_message"]
        if kept:
            extra["reply_markup"] = kept
        message = self._store(chat, self.bot_user, text, extra)
        self.sent.append({"chat_id": chat["id"], "message_id": message["message_id"],
                          "text": text, "parse_mode": p.get_str("parse_mode"),
                          "reply_markup": markup})  # fmt: skip
        return message

    def _edit_text(self, p: Params) -> JSONDict:
        message = self._message_to_edit(p)
        text = visible_text(p.get_str("text"), p.get_str("parse_mode"))
        markup = check_markup(p.get_obj("reply_markup"), inline_only=True)
        if text == message["text"] and markup == message.get("reply_markup"):
            raise bad(NOT_MODIFIED)
        return self._apply_edit("editMessageText", message, text, markup)

    def _edit_markup(self, p: Params) -> JSONDict:
        message = self._message_to_edit(p)
        markup = check_markup(p.get_obj("reply_markup"), inline_only=True)
        if markup == message.get("reply_markup"):
            raise bad(NOT_MODIFIED)
        return self._apply_edit("editMessageReplyMarkup", message, message["text"], markup)

    def _answer_callback(self, p: Params) -> bool:
        query_id = p.get_str("callback_query_id")
        if query_id not in self._open_queries:
            raise bad(QUERY_TOO_OLD)
        self._open_queries.discard(query_id)
        self.callback_answers.append({"callback_query_id": query_id, "text": p.get_str("text"),
                                      "show_alert": p.get_bool("show_alert")})  # fmt: skip
        return True

    def _set_commands(self, p: Params) -> bool:
        commands = p.get_obj("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH" if commands else "commands must be an Array")
        for cmd in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(cmd.get("command"))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", "")).strip()) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._scope_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _set_webhook(self, p: Params) -> bool:  # also deleteWebhook: no url
        url, secret = p.get_str("url") or None, p.get_str("secret_token")
        if url and not re.match(r"https?://\S+$", url):  # plain http allowed for local tests
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        if url and secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad("secret token contains unallowed characters")
        self.webhook_url, self.webhook_secret = url, secret if url else None
        if p.get_bool("drop_pending_updates"):
            self._pending.clear()
        self._notify()
        return True

    def _webhook_info(self, p: Params) -> JSONDict:
        info = {"url": self.webhook_url or "", "has_custom_certificate": False,
                "pending_update_count": len(self._pending)}  # fmt: skip
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # ---- internals ---------------------------------------------------------------------------
    def _scope_key(self, p: Params) -> tuple[str, str]:
        scope = p.get_obj("scope") or {"type": "default"}
        key = "default" if scope == {"type": "default"} else json.dumps(scope, sort_keys=True)
        return key, p.get_str("language_code") or ""

    def _chat(self, p: Params) -> JSONDict:
        chat = self._chats.get(p.chat_id())
        if chat is None:
            raise bad("chat not found")
        user = self.users.get(chat["id"])
        if user and user.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if user and not user.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def _message_to_edit(self, p: Params) -> JSONDict:
        if p.raw.get("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")  # messages sent via inline mode are not faked
        chat = self._chat(p)
        message = self._messages.get(chat["id"], {}).get(int(p.get_num("message_id")))
        if message is None:
            raise bad("message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise bad("message can't be edited")
        return message

    def _apply_edit(self, method: str, message: JSONDict, text: str,
                    markup: JSONDict | None) -> JSONDict:  # fmt: skip
        message.update(text=text, edit_date=int(time.time()), reply_markup=markup)
        if markup is None:
            del message["reply_markup"]
        self.edits.append({"method": method, "chat_id": message["chat"]["id"],
                           "message_id": message["message_id"], "text": text,
                           "reply_markup": markup})  # fmt: skip
        return copy.deepcopy(message)

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

    def _enqueue(self, body: JSONDict) -> JSONDict:
        update = {"update_id": next(self._update_ids), **body}
        self._updates[update["update_id"]] = update
        if self.deliver_updates:
            self._pending.append([copy.deepcopy(update), False])
            self._notify()
        return update

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _webhook_worker(self) -> None:
        assert self._session is not None
        while True:
            changed = self._changed
            if not (self.webhook_url and self._pending):
                await changed.wait()
                continue
            entry, secret = self._pending[0], self.webhook_secret
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
            for attempt in range(1, self.webhook_max_attempts + 1):  # then Telegram drops it
                try:
                    async with self._session.post(self.webhook_url, json=entry[0],
                                                  headers=headers) as response:  # fmt: skip
                        status, reason = response.status, response.reason or ""
                except (ClientError, TimeoutError) as err:
                    status, reason = 0, str(err) or type(err).__name__
                self.webhook_deliveries.append((entry[0]["update_id"], status))
                if 200 <= status < 300:
                    break
                self._webhook_error = (int(time.time()), f"Wrong response from the webhook: "
                                                         f"{status} {reason}")  # fmt: skip
                if attempt < self.webhook_max_attempts:
                    await asyncio.sleep(self.webhook_retry_delay)
                if not self.webhook_url:
                    break
            if self.webhook_url or 200 <= status < 300:  # else it waits for getUpdates
                self._pending = [e for e in self._pending if e is not entry]
