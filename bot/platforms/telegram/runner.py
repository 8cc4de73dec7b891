"""Telegram on python-telegram-bot v22: the only module of the bot that imports ``telegram``.

It translates and nothing more. Updates become :class:`bot.chat.Inbound` for
``Runtime.handle`` (taps, typed answers, /skip) or calls into
:class:`bot.platforms.telegram.commands.Triggers` (/start, /survey); prompts become
``sendMessage`` with an inline keyboard (bot/adapters/telegram_render.py). The event id of an
update is ``tg:<update_id>``: a redelivered update (a restart before the offset was confirmed,
a webhook retry) records nothing twice.

Modes: polling (getUpdates) or webhook (POST /telegram/webhook on the project's HTTP server,
checked against ``X-Telegram-Bot-Api-Secret-Token``; the update is handled before the answer
goes back, so Telegram redelivers whatever a crash interrupted). Updates of one user are
handled in order, different users' concurrently.

Flood control: about 30 requests/s overall and 20/min per group (PTB's AIORateLimiter), and
messages to one private chat in bursts of 5, then about one a second. A 429 pauses every
request for its retry_after and is retried up to 3 times, then surfaces as
``DeliveryError(retry_after=...)`` for the dispatcher to reschedule.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import warnings
from collections import OrderedDict
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Literal

from aiolimiter import AsyncLimiter
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    BaseUpdateProcessor,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from bot.app import Services
from bot.chat import Address, DeliveryError, Inbound, Platform, Prompt, Sent
from bot.platforms.base import Adapter
from bot.platforms.telegram.commands import Person, Triggers
from bot.platforms.telegram.render import (
    COMMANDS,
    alert_text,
    fit,
    render_prompt,
    say,
    settled_text,
)
from bot.settings import ConfigError, Settings

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
BENIGN = ("message is not modified", "message to edit not found", "message can't be edited",
          "query is too old", "message to be replied not found")  # fmt: skip
TgApp = Application[Any, Any, Any, Any, Any, Any]
Context = CallbackContext[Any, Any, Any, Any]


def api_urls(settings: Settings) -> tuple[str, str]:
    """PTB's base_url and base_file_url from ``telegram.api_base_url`` (".../bot")."""
    base = settings.telegram.api_base_url
    root = base.removesuffix("bot") if base.endswith("bot") else base.rstrip("/") + "/"
    return base, f"{root}file/bot"


async def fetch_bot_username(settings: Settings) -> str:
    """The bot's @username from getMe (for invite links)."""
    if settings.telegram_token is None:
        raise ConfigError("SURVEYBOT_TELEGRAM_TOKEN is not set")
    base_url, file_url = api_urls(settings)
    token = settings.telegram_token.get_secret_value()
    async with Bot(token, base_url=base_url, base_file_url=file_url) as bot:
        me = await bot.get_me()
    if not me.username:
        raise ConfigError("getMe returned no username")
    return me.username


class ChatRateLimiter(AIORateLimiter):
    """PTB's limiter (overall and per group) plus a limit on messages sent to one private
    chat: a burst of 5, then about one a second (edits and callback answers are not limited:
    they answer the customer's own pace)."""

    def __init__(self, per_chat_burst: int = 5) -> None:
        super().__init__(max_retries=3)
        self._burst = per_chat_burst
        self._chats: OrderedDict[int, AsyncLimiter] = OrderedDict()

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        call = super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        limiter = self._chat_limiter(data.get("chat_id")) if endpoint == "sendMessage" else None
        if limiter is None:
            return await call
        async with limiter:
            return await call

    def _chat_limiter(self, chat_id: object) -> AsyncLimiter | None:
        try:
            chat = int(str(chat_id))
        except ValueError:
            return None
        if chat <= 0:  # groups: PTB's group limiter
            return None
        if chat not in self._chats:
            if len(self._chats) >= 4096:
                self._chats.popitem(last=False)
            self._chats[chat] = AsyncLimiter(self._burst, self._burst)
        self._chats.move_to_end(chat)
        return self._chats[chat]


class PerUserOrder(BaseUpdateProcessor):
    """Concurrent updates, but one user's updates one after another, in arrival order."""

    def __init__(self, max_concurrent_updates: int = 64) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = 0
        if isinstance(update, Update):
            user, chat = update.effective_user, update.effective_chat
            key = user.id if user else chat.id if chat else update.update_id
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _redacted(exc: Exception, token: str) -> str:
    """An error's text without the bot token (network errors may quote the request URL)."""
    return str(exc).replace(token, "<token>") if token else str(exc)


def delivery_error(exc: TelegramError, token: str = "") -> DeliveryError:
    """Telegram's refusal as the runtime's DeliveryError (permanent / retry_after); its text
    is stored with the session and logged, so the bot token is cut out of it."""
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return DeliveryError(f"telegram flood control: {exc}", retry_after=seconds)
    if isinstance(exc, InvalidToken):
        return DeliveryError("telegram refused: the bot token was rejected", permanent=True)
    if isinstance(exc, Forbidden | BadRequest | ChatMigrated):
        return DeliveryError(f"telegram refused: {_redacted(exc, token)}", permanent=True)
    return DeliveryError(f"telegram unreachable: {_redacted(exc, token)}")  # NetworkError, ...


def _benign(exc: TelegramError) -> bool:
    return isinstance(exc, BadRequest) and any(b in exc.message.lower() for b in BENIGN)


class TelegramAdapter:
    """The Adapter protocol over a PTB bot."""

    platform: Platform = "telegram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._languages: OrderedDict[str, str] = OrderedDict()

    def saw(self, user: User) -> None:
        """Remember the language Telegram last reported for a user (for locale_of)."""
        if user.language_code:
            self._languages[str(user.id)] = user.language_code
            self._languages.move_to_end(str(user.id))
            if len(self._languages) > 10_000:
                self._languages.popitem(last=False)

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        rendered = render_prompt(prompt, address)
        markup = None
        if rendered.keyboard:
            rows = [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                    for row in rendered.keyboard]  # fmt: skip
            markup = InlineKeyboardMarkup(rows)
        try:
            chat_id = int(address.chat_id or address.user_id)
        except ValueError:
            raise DeliveryError(f"not a Telegram chat id: {address}", permanent=True) from None
        try:
            message = await self.bot.send_message(
                chat_id, rendered.html, parse_mode=ParseMode.HTML, reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )  # fmt: skip
        except TelegramError as exc:
            raise delivery_error(exc, self.bot.token) from exc
        return Sent(chat_id=str(message.chat_id), message_id=str(message.message_id))

    async def settle(self, inbound: Inbound, text: str) -> None:
        if inbound.message_id is None:
            return
        name = inbound.user_name if inbound.chat_id else None  # in a group: "Anna, ..."
        try:
            await self.bot.edit_message_text(
                settled_text(text, name), chat_id=int(inbound.chat_id or inbound.user_id),
                message_id=int(inbound.message_id),
            )  # fmt: skip
        except TelegramError as exc:
            level = logging.INFO if _benign(exc) else logging.WARNING
            log.log(level, "could not edit message %s: %s", inbound.message_id, exc)

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        try:
            if inbound.kind == "tap":
                if inbound.ref is not None:
                    await self.bot.answer_callback_query(
                        inbound.ref, text=alert_text(notice) if notice else None,
                        show_alert=bool(notice),
                    )  # fmt: skip
            elif notice:
                await self.reply(int(inbound.chat_id or inbound.user_id), inbound.message_id,
                                 notice)  # fmt: skip
        except TelegramError as exc:
            level = logging.INFO if _benign(exc) else logging.WARNING
            log.log(level, "could not acknowledge %s from %s: %s", inbound.kind,
                    inbound.user_id, exc)  # fmt: skip

    async def locale_of(self, address: Address) -> str | None:
        return self._languages.get(address.user_id)

    async def reply(self, chat_id: int, message_id: str | int | None, text: str) -> None:
        """A plain message answering ``message_id`` (sent even if that message is gone)."""
        reply_to = (
            ReplyParameters(int(message_id), allow_sending_without_reply=True)
            if message_id is not None
            else None
        )
        await self.bot.send_message(chat_id, fit(text, 4096), reply_parameters=reply_to)


def _person(user: User) -> Person:
    return Person(id=user.id, first_name=user.first_name, language=user.language_code,
                  is_bot=user.is_bot)  # fmt: skip


class TelegramRunner:
    """The PlatformRunner: builds the PTB application, registers handlers, polls or serves
    the webhook route."""

    def __init__(self, svc: Services) -> None:
        settings = svc.settings
        if settings.telegram_token is None:
            raise ConfigError("SURVEYBOT_TELEGRAM_TOKEN is not set")
        self.svc = svc
        self.mode: Literal["polling", "webhook"] = settings.telegram.mode
        self._secret = ""
        if self.mode == "webhook":
            if not settings.telegram.webhook_url:
                raise ConfigError("telegram.mode is webhook but telegram.webhook_url is not set")
            if settings.telegram_webhook_secret is None:
                raise ConfigError("telegram.mode is webhook: set SURVEYBOT_TELEGRAM_WEBHOOK_SECRET")
            self._secret = settings.telegram_webhook_secret.get_secret_value()
        base_url, file_url = api_urls(settings)
        builder = (
            Application.builder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(base_url)
            .base_file_url(file_url)
            .rate_limiter(ChatRateLimiter())
            .concurrent_updates(PerUserOrder())
        )
        if self.mode == "webhook":
            builder = builder.updater(None)
        self.application: TgApp = builder.build()
        self.telegram = TelegramAdapter(self.application.bot)
        self.adapter: Adapter = self.telegram
        self.triggers = Triggers(svc, self._bot_username)
        self._ready = False
        self._add_handlers()

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        app = self.application
        try:
            await app.initialize()  # getMe: checks the token
        except InvalidToken:  # its message quotes the token: not for logs
            raise ConfigError("SURVEYBOT_TELEGRAM_TOKEN was rejected by Telegram") from None
        except TelegramError as exc:
            raise ConfigError(
                f"cannot reach the Telegram Bot API at telegram.api_base_url "
                f"({self.svc.settings.telegram.api_base_url}): {_redacted(exc, app.bot.token)}"
            ) from None
        for lang, commands in COMMANDS.items():
            await app.bot.set_my_commands(
                [BotCommand(name, text) for name, text in commands],
                language_code=None if lang == "en" else lang,
            )
        if self.mode == "webhook":
            await app.bot.set_webhook(
                self.svc.settings.telegram.webhook_url or "", secret_token=self._secret,
                allowed_updates=list(ALLOWED_UPDATES),
            )  # fmt: skip
        else:
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0, timeout=timedelta(seconds=10),
                allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False,
            )  # fmt: skip
        await app.start()
        self._ready = True
        log.info("telegram bot @%s started (%s)", app.bot.username, self.mode)

    async def stop(self) -> None:
        """Stop fetching, finish the updates already fetched, close the HTTP session. The
        webhook stays registered: Telegram keeps updates for the next start."""
        self._ready = False
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    def router(self) -> APIRouter | None:
        if self.mode != "webhook":
            return None
        router = APIRouter()

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> Response:
            given = request.headers.get(SECRET_HEADER, "")
            if not secrets.compare_digest(given.encode(), self._secret.encode()):
                return JSONResponse({"detail": "wrong or missing secret token"}, 403)
            if not self._ready:
                return JSONResponse({"detail": "starting up"}, 503)  # Telegram retries
            try:
                update = Update.de_json(await request.json(), self.application.bot)
            except Exception as exc:
                log.warning("ignored a malformed Telegram update: %r", exc)
                return Response(status_code=200)
            await self.application.update_processor.process_update(
                update, self.application.process_update(update)
            )
            return Response(status_code=200)

        return router

    def _bot_username(self) -> str:
        return self.svc.settings.telegram.bot_username or self.application.bot.username

    # handlers ----------------------------------------------------------------------------
    def _add_handlers(self) -> None:
        private = filters.ChatType.PRIVATE
        app = self.application
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
        app.add_error_handler(self._on_error)

    async def _on_any(self, update: Update, context: Context) -> None:
        if update.effective_user is not None:
            self.telegram.saw(update.effective_user)

    async def _on_start(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        arg = context.args[0] if context.args else None
        answer = await self.triggers.start(_person(user), arg, update.update_id)
        if answer:
            await self.telegram.reply(message.chat_id, message.message_id, answer)

    async def _on_survey(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        staff = _person(user)
        if message.chat.type == ChatType.PRIVATE:
            answer = await self.triggers.survey_in_private(staff, message.text, update.update_id)
        else:
            replied = message.reply_to_message
            customer = replied.from_user if replied is not None else None
            if customer is not None:
                self.telegram.saw(customer)
            answer = await self.triggers.survey_in_group(
                staff, message.chat_id, _person(customer) if customer else None, message.text,
                update.update_id,
            )  # fmt: skip
        if answer:
            await self.telegram.reply(message.chat_id, message.message_id, answer)

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
        )  # fmt: skip
        await self.svc.runtime.handle(inbound)

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
        )  # fmt: skip
        await self.svc.runtime.handle(inbound)

    async def _on_error(self, update: object, context: Context) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("telegram update %s failed: %r", update_id, context.error,
                  exc_info=context.error)  # fmt: skip


def build_runner(svc: Services) -> TelegramRunner:
    """The Telegram PlatformRunner for ``surveybot run`` (bot/serve.py registers its adapter)."""
    return TelegramRunner(svc)
