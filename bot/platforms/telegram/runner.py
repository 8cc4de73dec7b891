"""Telegram on python-telegram-bot v22: the PlatformRunner that builds the PTB application,
registers the update handlers and polls (getUpdates) or serves the webhook route.

Only ``bot/platforms/telegram/`` imports ``telegram``. The pieces:
:mod:`~bot.platforms.telegram.adapter` (the Adapter: prompts out, acks and edits),
:mod:`~bot.platforms.telegram.updates` (updates in, per-user order),
:mod:`~bot.platforms.telegram.limits` (429 retries; the pace is the sender's budget),
:mod:`~bot.platforms.telegram.webhook` (POST /telegram/webhook),
:mod:`~bot.platforms.telegram.commands` (/start and /survey) and
:mod:`~bot.platforms.telegram.render` (pure texts and keyboards).
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter
from telegram import Bot, BotCommand
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from bot.app import Services
from bot.chat import Adapter
from bot.platforms.telegram.adapter import TelegramAdapter, redacted
from bot.platforms.telegram.commands import Triggers
from bot.platforms.telegram.limits import FloodRetry
from bot.platforms.telegram.polling import Poller
from bot.platforms.telegram.render import COMMANDS
from bot.platforms.telegram.updates import TgApp, Updates
from bot.platforms.telegram.webhook import webhook_router
from bot.settings import ConfigError, Settings

log = logging.getLogger(__name__)
ALLOWED_UPDATES = ("message", "callback_query")


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
            .rate_limiter(FloodRetry())  # 429s only: the sender's budget paces
            .updater(None)  # updates come through our inbox (polling.py, webhook.py)
        )
        self.application: TgApp = builder.build()
        self.telegram = TelegramAdapter(self.application.bot)
        self.adapter: Adapter = self.telegram
        self.triggers = Triggers(
            svc.dispatcher, svc.registry, frozenset(settings.staff.telegram), self._bot_username
        )
        self._ready = False
        self.updates = Updates(self.application, self.telegram, svc.runtime.process, self.triggers,
                               svc.desk.press if svc.desk else None,
                               svc.desk.note if svc.desk else None)  # fmt: skip
        self.updates.register()
        svc.inbox.processors["telegram"] = self.updates.process
        self.poller = Poller(self.application.bot, svc.inbox.accept, ALLOWED_UPDATES)

    async def start(self) -> None:
        app = self.application
        try:
            await app.initialize()  # getMe: checks the token
        except InvalidToken:  # its message quotes the token: not for logs
            raise ConfigError("SURVEYBOT_TELEGRAM_TOKEN was rejected by Telegram") from None
        except TelegramError as exc:
            raise ConfigError(
                f"cannot reach the Telegram Bot API at telegram.api_base_url "
                f"({self.svc.settings.telegram.api_base_url}): {redacted(exc, app.bot.token)}"
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
            await app.bot.delete_webhook(drop_pending_updates=False)
            self.poller.start()
        self._ready = True
        log.info("telegram bot @%s started (%s)", app.bot.username, self.mode)

    async def stop(self) -> None:
        """Stop fetching (updates the inbox took are confirmed), close the HTTP session. The
        webhook stays registered: Telegram keeps updates for the next start."""
        self._ready = False
        await self.poller.stop()
        await self.application.shutdown()

    def router(self) -> APIRouter | None:
        if self.mode != "webhook":
            return None
        return webhook_router(self.svc.inbox.accept, self._secret, lambda: self._ready)

    def _bot_username(self) -> str:
        return self.svc.settings.telegram.bot_username or self.application.bot.username


def build_runner(svc: Services) -> TelegramRunner:
    """The Telegram PlatformRunner for ``surveybot run`` (bot/run.py registers its adapter)."""
    return TelegramRunner(svc)
