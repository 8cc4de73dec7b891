"""The Adapter protocol over a python-telegram-bot ``Bot``: prompts become ``sendMessage`` with
an inline keyboard (:mod:`bot.platforms.telegram.render`), a tap is answered with
``answerCallbackQuery`` and its message edited to show the choice.

Telegram's refusals become :class:`bot.chat.DeliveryError` (permanent, or retry after N s);
their text is stored and logged, so the bot token is cut out of it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    User,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot.chat import Address, Card, DeliveryError, Inbound, Platform, Prompt, Sent, Settled
from bot.platforms.telegram.limits import retry_after_seconds
from bot.platforms.telegram.render import (
    Rendered,
    alert_text,
    fit,
    render_card,
    render_prompt,
    settled_text,
)

log = logging.getLogger(__name__)
BENIGN = ("message is not modified", "message to edit not found", "message can't be edited",
          "query is too old", "message to be replied not found")  # fmt: skip


def redacted(exc: Exception, token: str) -> str:
    """An error's text without the bot token (network errors may quote the request URL)."""
    return str(exc).replace(token, "<token>") if token else str(exc)


def delivery_error(exc: TelegramError, token: str = "") -> DeliveryError:
    """Telegram's refusal as the runtime's DeliveryError (permanent / retry_after); its text
    is stored with the session and logged, so the bot token is cut out of it."""
    if isinstance(exc, RetryAfter):  # Telegram does not say which limit: the chat's
        return DeliveryError(f"telegram flood control: {exc}", retry_after=retry_after_seconds(exc))
    if isinstance(exc, InvalidToken):
        return DeliveryError("telegram refused: the bot token was rejected", permanent=True)
    if isinstance(exc, Forbidden | BadRequest | ChatMigrated):
        return DeliveryError(f"telegram refused: {redacted(exc, token)}", permanent=True)
    return DeliveryError(f"telegram unreachable: {redacted(exc, token)}")  # NetworkError, ...


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
        return await self._send(address, render_prompt(prompt, address))

    async def post_card(self, address: Address, card: Card) -> Sent:
        return await self._send(address, render_card(card))

    async def edit_card(self, address: Address, message_id: str, card: Card) -> None:
        rendered = render_card(card)
        try:
            await self.bot.edit_message_text(
                rendered.html, chat_id=_chat(address), message_id=int(message_id),
                parse_mode=ParseMode.HTML, reply_markup=_markup(rendered),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )  # fmt: skip
        except TelegramError as exc:
            if isinstance(exc, BadRequest) and "not modified" in exc.message.lower():
                return
            raise delivery_error(exc, self.bot.token) from exc

    async def _send(self, address: Address, rendered: Rendered) -> Sent:
        markup = _markup(rendered)
        chat_id = _chat(address)
        try:
            message = await self.bot.send_message(
                chat_id, rendered.html, parse_mode=ParseMode.HTML, reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                message_thread_id=_topic(address.thread_id),
            )  # fmt: skip
        except TelegramError as exc:
            raise delivery_error(exc, self.bot.token) from exc
        return Sent(chat_id=str(message.chat_id), message_id=str(message.message_id))

    async def settle(self, inbound: Inbound, settled: Settled) -> None:
        if inbound.message_id is None:
            return
        name = inbound.user_name if inbound.chat_id else None  # in a group: "Anna, ..."
        try:
            await self.bot.edit_message_text(
                settled_text(settled.text, name), chat_id=int(inbound.chat_id or inbound.user_id),
                message_id=int(inbound.message_id),
            )  # fmt: skip
        except RetryAfter as exc:  # the sender pauses the chat and edits again
            raise delivery_error(exc, self.bot.token) from exc
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
                                 notice, inbound.thread_id)  # fmt: skip
        except TelegramError as exc:
            level = logging.INFO if _benign(exc) else logging.WARNING
            log.log(level, "could not acknowledge %s from %s: %s", inbound.kind,
                    inbound.user_id, exc)  # fmt: skip

    async def locale_of(self, address: Address) -> str | None:
        return self._languages.get(address.user_id)

    async def reply(
        self, chat_id: int, message_id: str | int | None, text: str, topic: str | None = None
    ) -> None:
        """A plain message answering ``message_id`` (sent even if that message is gone), in
        the forum topic ``topic`` when there is one."""
        reply_to = (
            ReplyParameters(int(message_id), allow_sending_without_reply=True)
            if message_id is not None
            else None
        )
        await self.bot.send_message(chat_id, fit(text, 4096), reply_parameters=reply_to,
                                    message_thread_id=_topic(topic))  # fmt: skip


def _markup(rendered: Rendered) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in rendered.keyboard]  # fmt: skip
    return InlineKeyboardMarkup(rows) if rows else None


def _chat(address: Address) -> int:
    try:
        return int(address.chat_id or address.user_id)
    except ValueError:
        raise DeliveryError(f"not a Telegram chat id: {address}", permanent=True) from None


def _topic(thread_id: str | None) -> int | None:
    """A forum topic id for the Bot API (``message_thread_id``); None outside topics."""
    return int(thread_id) if thread_id and thread_id.isdigit() else None
