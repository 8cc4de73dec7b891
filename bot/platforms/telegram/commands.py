"""What Telegram commands ask for, on plain values: /start (deep links, invite tokens) and
/survey (staff, in a group as a reply or in a private chat with a user id).

The handlers in :mod:`bot.platforms.telegram.updates` pull the sender, chat and text out of an
Update and call these; each returns the text to answer with (None: the survey itself is the
answer). The decisions belong to :mod:`bot.conversation.triggers` (arguments, deep links, the
staff reply) and :class:`Dispatcher` (throttling, idempotency — the update id is the idempotency
key, so a redelivered command never starts a second survey — and rate limits); nothing here
touches storage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from bot.chat import Address
from bot.conversation.admission import MAX_CONTEXT_KEYS
from bot.conversation.credit import credited
from bot.conversation.dispatch import Dispatcher, TriggerResult
from bot.conversation.runtime import UnknownFlow
from bot.conversation.triggers import (
    BadArguments,
    not_staff,
    parse_arguments,
    split_words,
    staff_reply,
    start_from_link,
    unknown_flow,
)
from bot.platforms.telegram.render import invite_link, say
from bot.survey.loader import FlowRegistry

log = logging.getLogger(__name__)
START = "telegram:start"


@dataclass(frozen=True)
class Person:
    """A Telegram user as an update shows them."""

    id: int
    first_name: str
    language: str | None = None
    is_bot: bool = False
    full_name: str | None = None  # first and last name: how staff are credited as agent


def idempotency_key(update_id: int) -> str:
    return f"tg-update:{update_id}"


@dataclass
class Triggers:
    dispatcher: Dispatcher
    registry: FlowRegistry
    staff: Collection[int]
    bot_username: Callable[[], str]

    def is_staff(self, person: Person) -> bool:
        return person.id in self.staff

    def _flows(self) -> str:
        return ", ".join(sorted(self.registry.ids())) or "—"

    # /start ------------------------------------------------------------------------------
    async def start(self, person: Person, arg: str | None, update_id: int) -> str | None:
        """``/start <flow_id>`` or ``/start <invite token>`` in a private chat."""
        lang = person.language
        if not arg:
            return say("welcome", lang)
        address = Address(platform="telegram", user_id=str(person.id), user_name=None)
        started = await start_from_link(
            self.dispatcher, arg, address, triggered_by=START, locale=lang,
            idempotency_key=idempotency_key(update_id),
        )  # fmt: skip
        if started.outcome == "unknown_flow":
            return unknown_flow(started.flow_id or arg, self.registry.ids(), lang)
        if started.outcome == "invalid_link":
            return say("link_invalid", lang)
        if started.result is not None and started.result.status == "failed":
            log.warning("could not start %s for telegram:%s: %s", started.flow_id, person.id,
                        started.result.reason)  # fmt: skip
        return None

    # /survey -------------------------------------------------------------------------------
    async def survey_in_group(
        self,
        staff: Person,
        chat_id: int,
        customer: Person | None,
        text: str,
        update_id: int,
        topic: str | None = None,
    ) -> str | None:
        """Staff reply ``/survey <flow> [k=v ...]`` to the customer's message in a group: the
        survey goes to the group, addressed to that customer — in a forum supergroup, in the
        topic (``message_thread_id``) it was asked in. None when it went out."""
        lang = staff.language
        parsed = self._staff_command(staff, text)
        if isinstance(parsed, str):
            return parsed
        words, context = parsed
        if customer is None or customer.is_bot or len(words) != 1:
            return say("usage_group", lang, flows=self._flows())
        address = Address(
            platform="telegram", user_id=str(customer.id), chat_id=str(chat_id),
            user_name=customer.first_name, thread_id=topic,
        )  # fmt: skip
        result = await self._request(words[0], address, context, staff, update_id, customer)
        if isinstance(result, str):
            return result
        if result.status == "sent":
            return None  # the survey in the group is the answer
        return staff_reply(result, words[0], customer.first_name, lang)

    def _staff_command(
        self, staff: Person, text: str
    ) -> tuple[tuple[str, ...], Mapping[str, str]] | str:
        """``/survey`` words and k=v context from staff, or the refusal / error to reply."""
        if not self.is_staff(staff):
            log.info("refused /survey from non-staff Telegram user %s", staff.id)
            return not_staff("telegram", str(staff.id), staff.language)
        _, _, rest = text.strip().partition(" ")  # "/survey" or "/survey@bot" goes
        try:
            args = parse_arguments(split_words(rest))
        except BadArguments as exc:
            return say("bad_context", staff.language, item=exc.item, max=MAX_CONTEXT_KEYS)
        return args.words, args.context

    async def survey_in_private(self, staff: Person, text: str, update_id: int) -> str | None:
        """Staff ``/survey <flow> <user_id> [k=v ...]`` in a private chat with the bot: to the
        customer's private chat, or an invite link when the bot cannot write to them."""
        lang = staff.language
        parsed = self._staff_command(staff, text)
        if isinstance(parsed, str):
            return parsed
        words, context = parsed
        if len(words) != 2 or not re.fullmatch(r"\d{1,20}", words[1]):
            return say("usage_private", lang, flows=self._flows())
        flow_id, user_id = words
        address = Address(platform="telegram", user_id=user_id)
        result = await self._request(flow_id, address, context, staff, update_id, None)
        if isinstance(result, str):
            return result
        if result.status == "failed":
            token = await self.dispatcher.invite(flow_id, context)
            link = invite_link(self.bot_username(), token)
            return say("invite", lang, who=user_id, flow=flow_id, link=link)
        return staff_reply(result, flow_id, user_id, lang)

    async def _request(
        self,
        flow_id: str,
        address: Address,
        context: Mapping[str, str],
        staff: Person,
        update_id: int,
        customer: Person | None,
    ) -> TriggerResult | str:
        try:
            return await self.dispatcher.request(
                flow_id, address, credited(context, staff.full_name or staff.first_name),
                triggered_by=f"telegram:{staff.id}",
                locale=customer.language if customer else None,
                idempotency_key=idempotency_key(update_id),
            )  # fmt: skip
        except UnknownFlow:
            return unknown_flow(flow_id, self.registry.ids(), staff.language)
