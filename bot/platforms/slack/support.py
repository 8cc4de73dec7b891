"""Surveys in Slack support threads: staff resolve a customer's thread with a reaction (✅ by
default) or the "Send survey" message shortcut, and the channel's flow is posted in that
thread for the thread's requester — once per thread.

The steps, in order: the reaction must be the channel's (``slack.channels`` over
``slack.threads`` in config.yaml) and the person staff — a non-staff ✅ does nothing, a
non-staff shortcut is refused; the thread is read (``conversations.replies``) to find its
requester, the author of its root message; a thread that already has its survey gets a note
saying when it was sent; otherwise the survey is requested through the dispatcher with the
thread's idempotency key (so racing or redelivered triggers make one survey), not throttled
(each resolved conversation is asked once, like a ticket), crediting the staff member as
``agent``. The requester's language: users.info, else the channel's ``locale``, else the
language of their own messages in the thread (:mod:`bot.platforms.language`), else the flow's
first. Every note to staff is ephemeral, in the staff member's language.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.app import Services
from bot.chat import Address
from bot.conversation.credit import credited
from bot.conversation.dispatch import TriggerResult
from bot.conversation.runtime import UnknownFlow
from bot.platforms.language import detect_async
from bot.platforms.slack.adapter import NETWORK_ERRORS, SlackAdapter
from bot.platforms.slack.threads import Thread, ThreadTrigger, thread_key, thread_of
from bot.settings import SlackThreadsConfig
from bot.survey.texts import outside_text
from storage.base import SessionRecord

log = logging.getLogger(__name__)


class ThreadSurveys:
    def __init__(self, svc: Services, slack: SlackAdapter, staff: set[str]) -> None:
        self.svc = svc
        self.slack = slack
        self.staff = staff

    async def trigger(self, trigger: ThreadTrigger) -> None:
        """Act on a reaction or shortcut; never raises for Slack's or the customer's reasons."""
        config = self.svc.settings.slack.for_channel(trigger.channel)
        if trigger.via == "reaction" and (
            config.reaction is None or trigger.reaction != config.reaction
        ):
            return
        if trigger.staff_id not in self.staff:
            log.info("ignored a thread survey %s by non-staff %s", trigger.via, trigger.staff_id)
            if trigger.via == "shortcut":
                await self._tell(trigger, "thread_staff_only", id=trigger.staff_id)
            return
        try:
            thread = thread_of(
                trigger.channel, await self.slack.replies(trigger.channel, trigger.message_ts)
            )
        except SlackApiError as exc:
            log.warning("cannot read thread %s/%s: %s", trigger.channel, trigger.message_ts, exc)
            await self._tell(trigger, "thread_unreadable", reason=exc.response.get("error"))
            return
        except NETWORK_ERRORS as exc:
            log.warning("cannot read thread %s/%s: %r", trigger.channel, trigger.message_ts, exc)
            return
        if thread is None or thread.requester in (None, trigger.staff_id):
            await self._tell(trigger, "thread_no_customer", thread=thread)
            return
        await self._ask(trigger, thread, config)

    async def _ask(
        self, trigger: ThreadTrigger, thread: Thread, config: SlackThreadsConfig
    ) -> None:
        assert thread.requester is not None
        key = thread_key(thread.channel, thread.root_ts)
        who = f"<@{thread.requester}>"
        earlier = await self.svc.storage.session_by_key(key)
        if earlier is not None:
            if await self._first_delivery(trigger):
                await self._already(trigger, thread, earlier, who)
            return
        flows = ", ".join(self.svc.registry.ids()) or "—"
        if self.svc.registry.get(config.flow) is None:
            await self._tell(trigger, "thread_unknown_flow", thread, flow=config.flow, flows=flows)
            return
        staff = await self.slack.profile_of(trigger.staff_id)
        address = Address(
            platform="slack", user_id=thread.requester, chat_id=thread.channel,
            thread_id=thread.root_ts, user_name=who,
        )  # fmt: skip
        try:
            result = await self.svc.dispatcher.request(
                config.flow, address, credited({}, staff.name or trigger.staff_id),
                triggered_by=f"slack:{trigger.staff_id}", idempotency_key=key, throttle=False,
                locale=await self._customer_locale(thread, config),
            )  # fmt: skip
        except UnknownFlow:
            await self._tell(trigger, "thread_unknown_flow", thread, flow=config.flow, flows=flows)
            return
        await self._first_delivery(trigger)  # a redelivery of this trigger now says nothing
        if not result.created:  # a trigger racing this one made the survey
            session = await self.svc.storage.session_by_key(key)
            if session is not None:
                await self._already(trigger, thread, session, who)
            return
        await self._confirm(trigger, thread, result, config.flow, who)

    async def _customer_locale(self, thread: Thread, config: SlackThreadsConfig) -> str | None:
        assert thread.requester is not None
        known = (await self.slack.profile_of(thread.requester)).locale
        if known or config.locale:
            return known or config.locale
        return await detect_async(thread.words) if thread.words else None

    async def _confirm(
        self, trigger: ThreadTrigger, thread: Thread, result: TriggerResult, flow: str, who: str
    ) -> None:
        reason = result.reason or ""
        if result.status == "sent":
            await self._tell(trigger, "thread_sent", thread, flow=flow, who=who)
        elif result.status == "scheduled":
            await self._tell(trigger, "thread_queued", thread, flow=flow, who=who, reason=reason)
        else:
            await self._tell(trigger, "thread_failed", thread, flow=flow, who=who, reason=reason)

    async def _already(
        self, trigger: ThreadTrigger, thread: Thread, session: SessionRecord, who: str
    ) -> None:
        when = (session.sent_at or session.created_at).strftime("%Y-%m-%d %H:%M")
        await self._tell(trigger, "thread_already", thread, who=who, flow=session.flow_id,
                         when=when)  # fmt: skip

    async def _first_delivery(self, trigger: ThreadTrigger) -> bool:
        """False when this very reaction or shortcut was handled before (Slack redelivered
        it after a restart): its note was given then."""
        if not trigger.delivery_id:
            return True
        event = f"slack:thread:{trigger.delivery_id}"
        return await self.svc.storage.claim_event(event, self.svc.dispatcher.clock())

    async def _tell(
        self, trigger: ThreadTrigger, key: str, thread: Thread | None = None, **params: object
    ) -> None:
        locale = (await self.slack.profile_of(trigger.staff_id)).locale
        text = outside_text(key, locale, params)
        root = thread.root_ts if thread is not None else trigger.message_ts
        await self.slack.tell(trigger.staff_id, trigger.channel, text, thread_ts=root,
                              response_url=trigger.response_url)  # fmt: skip
