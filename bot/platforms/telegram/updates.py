"""Incoming Telegram updates: what each kind becomes, and in which order they are handled.

Taps, typed answers and /skip become :class:`bot.chat.Inbound` for the runtime; /start and
/survey go to :class:`bot.platforms.telegram.commands.Triggers`; /help and unknown commands in
a private chat get the help text. The event id of an update is ``tg:<update_id>``: a
redelivered update (a restart before the offset was confirmed, a webhook retry) records nothing
twice. :meth:`Updates.process` parses one raw update from the inbox and runs the handler that
matches it; whatever goes wrong (an update PTB cannot parse, a handler that fails) is raised to
the inbox, which retries and then quarantines it. The inbox handles one user's updates in
order, different users' concurrently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from telegram import Message, Update, User
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.chat import Inbound, RawEvent, is_followup
from bot.platforms.telegram.adapter import TelegramAdapter
from bot.platforms.telegram.commands import Person, Triggers
from bot.platforms.telegram.render import say

log = logging.getLogger(__name__)
TgApp = Application[Any, Any, Any, Any, Any, Any]
Context = CallbackContext[Any, Any, Any, Any]
Handle = Callable[[Inbound], Awaitable[object]]


def person(user: User) -> Person:
    return Person(id=user.id, first_name=user.first_name, language=user.language_code,
                  is_bot=user.is_bot, full_name=user.full_name)  # fmt: skip


def _replied_to_bot(message: Message) -> str | None:
    """The bot's message this one replies to, in a group (a note on an alert, perhaps)."""
    replied = message.reply_to_message
    if message.chat.type == ChatType.PRIVATE or replied is None or replied.from_user is None:
        return None
    return str(replied.message_id) if replied.from_user.is_bot else None


def topic_of(message: object) -> str | None:
    """The forum topic a message is in (``message_thread_id``), or None: a private chat, a
    group without topics, the "General" topic, or a reply thread of an ordinary supergroup
    (which also carries a message_thread_id, but is no topic)."""
    if isinstance(message, Message) and message.is_topic_message and message.message_thread_id:
        return str(message.message_thread_id)
    return None


class Updates:
    """The handlers registered on the PTB application; each pulls plain values out of an
    Update and hands them on."""

    def __init__(
        self,
        app: TgApp,
        telegram: TelegramAdapter,
        handle: Handle,
        triggers: Triggers,
        press: Handle | None = None,  # the buttons of staff alerts (FollowupDesk.press)
        note: Callable[[Inbound], Awaitable[bool]] | None = None,  # replies to alerts
    ) -> None:
        self.app = app
        self.telegram = telegram
        self.handle = handle
        self.triggers = triggers
        self.press = press
        self.note = note

    def register(self) -> None:
        app = self.app
        private = filters.ChatType.PRIVATE
        app.add_handler(TypeHandler(Update, self._on_any), group=-1)
        app.add_handlers([
            CommandHandler("start", self._on_start, filters=private),
            CommandHandler("survey", self._on_survey),
            CommandHandler("skip", self._on_skip),
            CommandHandler("help", self._on_help, filters=private),
            CallbackQueryHandler(self._on_tap),
            MessageHandler(filters.TEXT & ~filters.COMMAND, self._on_text),
            MessageHandler(filters.COMMAND & private, self._on_help),
        ])  # fmt: skip

    async def process(self, event: RawEvent) -> None:
        """Parse one raw update and run the first matching handler of each group (what PTB's
        ``Application.process_update`` does, except that errors are raised, not logged)."""
        data = json.loads(event.body)
        if not isinstance(data, dict):
            raise ValueError(f"an update must be a JSON object, not {type(data).__name__}")
        update = Update.de_json(data, self.app.bot)
        context: Context | None = None
        for handlers in list(self.app.handlers.values()):
            for handler in handlers:
                check = handler.check_update(update)
                if check is None or check is False:
                    continue
                if context is None:
                    context = self.app.context_types.context.from_update(update, self.app)
                await handler.handle_update(update, self.app, check, context)
                break

    async def _on_any(self, update: Update, context: Context) -> None:
        if update.effective_user is not None:
            self.telegram.saw(update.effective_user)

    async def _on_start(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        arg = context.args[0] if context.args else None
        answer = await self.triggers.start(person(user), arg, update.update_id)
        if answer:
            await self.telegram.reply(message.chat_id, message.message_id, answer)

    async def _on_survey(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        staff = person(user)
        if message.chat.type == ChatType.PRIVATE:
            answer = await self.triggers.survey_in_private(staff, message.text, update.update_id)
        else:
            replied = message.reply_to_message
            customer = replied.from_user if replied is not None else None
            if customer is not None:
                self.telegram.saw(customer)
            answer = await self.triggers.survey_in_group(
                staff, message.chat_id, person(customer) if customer else None, message.text,
                update.update_id, topic_of(message),
            )  # fmt: skip
        if answer:
            await self.telegram.reply(message.chat_id, message.message_id, answer,
                                      topic_of(message))  # fmt: skip

    async def _on_help(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is not None and user is not None:
            await self.telegram.reply(message.chat_id, message.message_id,
                                     say("help", user.language_code))  # fmt: skip

    async def _on_skip(self, update: Update, context: Context) -> None:
        await self._typed(update, "skip")

    async def _on_text(self, update: Update, context: Context) -> None:
        await self._typed(update, "text")

    async def _typed(self, update: Update, kind: Literal["text", "skip"]) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot or message.text is None:
            return
        inbound = Inbound(
            platform="telegram", kind=kind, user_id=str(user.id),
            chat_id=None if message.chat.type == ChatType.PRIVATE else str(message.chat_id),
            event_id=f"tg:{update.update_id}", locale=user.language_code, text=message.text,
            message_id=str(message.message_id), user_name=user.first_name,
            thread_id=topic_of(message), reply_to=_replied_to_bot(message),
        )  # fmt: skip
        if inbound.reply_to and self.note is not None and await self.note(inbound):
            return  # a note on a staff alert, not a survey answer
        await self.handle(inbound)

    async def _on_tap(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        if query.data is None:  # a game button or similar: nothing of ours
            await query.answer()
            return
        message = query.message
        chat_id = None
        if message is not None and message.chat.type != ChatType.PRIVATE:
            chat_id = str(message.chat.id)
        inbound = Inbound(
            platform="telegram", kind="tap", user_id=str(query.from_user.id), chat_id=chat_id,
            event_id=f"tg:{update.update_id}", locale=query.from_user.language_code,
            payload=query.data, ref=query.id, user_name=query.from_user.first_name,
            message_id=str(message.message_id) if message is not None else None,
            thread_id=topic_of(message),
        )  # fmt: skip
        await (self.press if self.press and is_followup(query.data) else self.handle)(inbound)
