"""The Bot API methods the fake implements, with Telegram's checks and error texts:
getMe, getUpdates (long polling), sendMessage, editMessageText, editMessageReplyMarkup,
answerCallbackQuery, set/getMyCommands, set/deleteWebhook, getWebhookInfo.

``strict_limits()`` makes sendMessage answer 429 with ``retry_after`` over Telegram's published
limits (see ``telegram_limits``); ``fail_next`` forces 429s on any method.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram_checks import (
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    ApiError,
    JSONDict,
    Params,
    bad,
    check_markup,
    visible_text,
)
from tests.fakes.telegram_limits import SendLimits
from tests.fakes.telegram_state import TelegramState

LIMITED_METHODS = frozenset({"sendmessage"})  # what Telegram's message limits count


class TelegramMethods(TelegramState):
    def __init__(self, token: str, bot_username: str) -> None:
        super().__init__(token, bot_username)
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.limits: SendLimits | None = None  # set by strict_limits()
        self.limit_hits: list[JSONDict] = []  # method, chat_id, retry_after of limit 429s
        self._failures: dict[str, list[int]] = {}
        self._allowed: list[str] | None = None
        self._poll_seq, self._closing = 0, False
        self._webhook_error: tuple[int, str] | None = None
        self._held: set[str] = set()  # methods whose answers wait for release_answers()
        self._release = asyncio.Event()
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

    # ---- test controls -------------------------------------------------------------------------
    def fail_next(self, method: str, n: int = 1, retry_after: int = 1) -> None:
        """The next ``n`` calls of ``method`` get 429 Too Many Requests."""
        self._failures[method.lower()] = [n, retry_after]

    def hold_answers(self, method: str) -> None:
        """Carry out calls of ``method`` but keep their answers back until
        :meth:`release_answers`: the bot dies (or gives up) right after Telegram acted, never
        learning that it did."""
        self._held.add(method.lower())

    def release_answers(self) -> None:
        """Answer the held calls (to whoever is still listening) and hold no more."""
        self._held.clear()
        self._release.set()
        self._release = asyncio.Event()

    def strict_limits(self, limits: SendLimits | None = None) -> SendLimits:
        """Enforce Telegram's send limits from now on (defaults: 30/s overall, 1/s per chat
        after a burst of 3, 20/min per group); sends over them get 429 + retry_after and are
        counted in ``limit_hits`` / ``too_many_requests``."""
        self.limits = limits or SendLimits()
        return self.limits

    @property
    def too_many_requests(self) -> int:
        """How many calls were answered 429 (limits and ``fail_next`` alike)."""
        return sum(1 for call in self.calls if call.status == 429)

    # ---- dispatch ------------------------------------------------------------------------------
    async def call_method(self, method: str, token: str, raw: JSONDict) -> tuple[int, JSONDict]:
        """Run one Bot API call; (HTTP status, Telegram's JSON answer)."""
        handler, failure = self._methods.get(method.lower()), self._failures.get(method.lower())
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            if failure and failure[0] > 0:
                failure[0] -= 1
                raise ApiError(429, f"Too Many Requests: retry after {failure[1]}",
                               {"retry_after": failure[1]})  # fmt: skip
            result = handler(Params(raw))
            result = await result if asyncio.iscoroutine(result) else result
            if method.lower() in self._held:
                await self._release.wait()
            return 200, {"ok": True, "result": result}
        except ApiError as err:
            payload = {"ok": False, "error_code": err.code, "description": err.description}
            return err.code, payload | ({"parameters": err.parameters} if err.parameters else {})

    def _spend_limit(self, method: str, chat_id: int) -> None:
        """In strict mode, count a valid send against Telegram's limits or refuse it (429)."""
        if self.limits is None or method.lower() not in LIMITED_METHODS:
            return
        wait = self.limits.check(chat_id, self.clock())
        if wait is not None:
            self.limit_hits.append({"method": method, "chat_id": chat_id, "retry_after": wait})
            raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})

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
            changed = self.changed()
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
        if p.raw.get("message_thread_id") and chat.get("is_forum"):
            thread = int(p.get_num("message_thread_id"))
            if thread not in self._topics.get(chat["id"], {}):
                raise bad("message thread not found")
            extra.update(message_thread_id=thread, is_topic_message=True)
        if kept:
            extra["reply_markup"] = kept
        self._spend_limit("sendMessage", chat["id"])
        message = self._store(chat, self.bot_user, text, extra)
        self.sent.append({"chat_id": chat["id"], "message_id": message["message_id"],
                          "text": text, "parse_mode": p.get_str("parse_mode"),
                          "reply_markup": markup,
                          "message_thread_id": extra.get("message_thread_id")})  # fmt: skip
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
        if query_id in self._tapped_at:  # a figure for benchmarks, not for assertions
            self.callback_latency[query_id] = time.monotonic() - self._tapped_at.pop(query_id)
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
        if url:
            connections = int(p.get_num("max_connections", 40))
            if not 1 <= connections <= 100:
                raise bad("bad webhook: max_connections must be between 1 and 100")
            self.webhook_max_connections = connections
        if p.get_bool("drop_pending_updates"):
            self._pending.clear()
        self.notify()
        return True

    def _webhook_info(self, p: Params) -> JSONDict:
        info = {"url": self.webhook_url or "", "has_custom_certificate": False,
                "pending_update_count": len(self._pending)}  # fmt: skip
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # ---- helpers -------------------------------------------------------------------------------
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
