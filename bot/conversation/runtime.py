"""The one place where adapters, engine and storage meet.

``Runtime.process(inbound)``: find the session, serialize on it, ask the engine, commit the
answer + new state + event id + what it owes the customer (outbox rows: the tapped message
settled, the next question or the thanks) in one transaction, *then* acknowledge the tap and
wake the sender. A stale, forged or foreign tap gets a localized notice and records nothing.
``start_survey`` / ``create_session`` + ``deliver`` (:mod:`bot.conversation.starting`) begin
a survey.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics
from bot.chat import (
    Adapter,
    Address,
    DeliveryError,
    Inbound,
    Prompt,
    decode_payload,
)
from bot.conversation.addressee import refusal
from bot.conversation.alerts import Alerts, alert_rows
from bot.conversation.locks import KeyedLock
from bot.conversation.owed import owed_for, owed_prompt, record_prompted
from bot.conversation.sender import Sender, send_now
from bot.conversation.starting import FirstOutcome, Starting
from bot.conversation.ticket import carried
from bot.conversation.ticket import committed as ticket_done
from bot.conversation.webhooks import WebhookEvents, webhook_rows
from bot.survey.engine import Reply, Step, advance
from bot.survey.flow import Flow
from bot.survey.loader import FlowRegistry
from bot.survey.prompts import question_prompt
from bot.survey.texts import primary_language, text_for
from storage.base import InboxRef, SessionRecord, Storage, utcnow

log = logging.getLogger(__name__)
DEFAULT_EXPIRY = timedelta(hours=72)
CONFLICT_RETRIES = 3  # reads and decisions of one event when other workers keep moving it


class UnknownFlow(LookupError):
    def __init__(self, flow_id: str, available: list[str]) -> None:
        super().__init__(
            f"unknown flow {flow_id!r}; available: {', '.join(available) or '(none loaded)'}"
        )
        self.flow_id = flow_id
        self.available = available


@dataclass
class Runtime(Starting):
    registry: FlowRegistry
    storage: Storage
    adapters: dict[str, Adapter] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    default_expiry: timedelta = DEFAULT_EXPIRY
    # Messages an answer makes owed go into the outbox with it and the sender delivers them;
    # without a sender they are sent at once after the commit (lost if the process dies then).
    sender: Sender | None = None
    webhooks: WebhookEvents | None = None  # signed outgoing webhooks (owed with each commit)
    alerts: Alerts | None = None  # detractor alerts to staff channels (owed with each commit)
    _sessions: KeyedLock[str] = field(default_factory=KeyedLock, repr=False)
    _flows: dict[tuple[str, str], Flow] = field(default_factory=dict, repr=False)
    # first questions owed by this process, until someone asks how they fared
    _first: dict[str, asyncio.Future[FirstOutcome]] = field(default_factory=dict, repr=False)

    # flows -------------------------------------------------------------------------------
    def flow(self, flow_id: str) -> Flow:
        flow = self.registry.get(flow_id)
        if flow is None:
            raise UnknownFlow(flow_id, self.registry.ids())
        return flow

    async def flow_for(self, session: SessionRecord) -> Flow:
        """The flow version the session started with, even after the file changed."""
        current = self.registry.get(session.flow_id)
        if current is not None and current.version == session.flow_version:
            return current
        key = (session.flow_id, session.flow_version)
        if key not in self._flows:
            raw = await self.storage.load_flow_version(*key)
            if raw is None:
                raise UnknownFlow(session.flow_id, self.registry.ids())
            if len(self._flows) > 256:
                self._flows.clear()
            self._flows[key] = Flow.from_json(raw)
        return self._flows[key]

    # handling ----------------------------------------------------------------------------
    async def handle(self, inbound: Inbound) -> None:
        """Never raises: a failure is logged and the process keeps running (the console)."""
        try:
            await self.process(inbound)
        except Exception:
            log.exception("failed to handle %s event from %s", inbound.kind, inbound.user_id)

    async def process(self, inbound: Inbound) -> str:
        """Handle one event and return its outcome; raises what went wrong (a storage write
        that failed, say), so the inbox keeps the event and retries it."""
        started = time.perf_counter()
        outcome = "error"
        try:
            outcome = await self._handle(inbound)
            return outcome
        finally:
            metrics.EVENTS.labels(inbound.platform, outcome).inc()
            metrics.HANDLE_SECONDS.labels(inbound.platform).observe(time.perf_counter() - started)

    async def _handle(self, inbound: Inbound) -> str:
        adapter = self._adapter(inbound.platform)
        session: SessionRecord | None
        tap: tuple[str, int, str] | None = None
        active: SessionRecord | None = None
        if inbound.kind == "tap":
            tap = decode_payload(inbound.payload)
            session_id = tap[0] if tap else None
        else:
            where = (inbound.platform, inbound.user_id, inbound.chat_id, inbound.thread_id)
            active = await self.storage.active_session(*where)
            if active is None:
                if inbound.chat_id is None:  # a DM with no survey under way gets a notice
                    await self._no_survey(adapter, inbound)
                return "no_session"
            session_id = active.id
        if session_id is None:
            return await self._forged(adapter, inbound)
        # Read the session under its lock. A text reply's lookup needs no second read when
        # nobody in this process held the lock while it ran (nothing can have changed it;
        # another worker's change is caught by the version check at commit).
        busy = self._sessions.busy(session_id)
        async with self.exclusive(session_id):
            if active is not None and not busy:
                session = active
            else:
                session = await self.storage.get_session(session_id)
            for _ in range(CONFLICT_RETRIES):
                if session is None or session.platform != inbound.platform:
                    return await self._forged(adapter, inbound)
                outcome = await self._handle_locked(adapter, inbound, session, tap)
                if outcome != "conflict":
                    return outcome
                # Another worker moved the session between our read and our commit (its
                # sender recorded a delivery, or it took an answer): read again and decide
                # again; the engine says "stale" if the answer is already there.
                session = await self.storage.get_session(session_id)
            await adapter.acknowledge(inbound, text_for("already_answered", self._lang(inbound)))
            return "duplicate"

    async def _no_survey(self, adapter: Adapter, inbound: Inbound) -> None:
        """ "No survey is waiting for you", once per event (not per redelivery): owed with the
        event's claim and the inbox row done, so a crash right after still delivers it."""
        lang = self._lang(inbound)
        text = text_for("no_survey", lang)
        if self.sender is not None and inbound.event_id is not None:
            address = Address(platform=inbound.platform, user_id=inbound.user_id)
            await self.owe_notice(address, text, lang, inbound.event_id, carried())
        elif inbound.event_id is None or await self.storage.claim_event(
            inbound.event_id, self.clock()
        ):
            await adapter.acknowledge(inbound, text)

    async def owe_notice(
        self, address: Address, text: str, locale: str, once: str, inbox_id: InboxRef | None = None
    ) -> bool:
        """A notice to ``address`` owed once per ``once`` (an event id): an outbox row
        committed with the claim of ``once`` (and the inbox row ``inbox_id`` marked done), then
        the sender is woken. False when ``once`` was claimed before (nothing owed again).
        Needs the sender; without one, claim and send yourself."""
        assert self.sender is not None
        prompt = Prompt(kind="notice", session_id="", text=text, locale=locale)
        owed = owed_prompt(address, prompt, self.clock())
        claimed = self.storage.claim_event(once, self.clock(), inbox_id=inbox_id, outbox=[owed])
        if not await self._owing(claimed, [owed]):
            return False
        ticket_done(inbox_id)
        return True

    async def _forged(self, adapter: Adapter, inbound: Inbound) -> str:
        log.warning("ignored tap with unknown payload %r", inbound.payload)
        await adapter.acknowledge(inbound, text_for("invalid_button", self._lang(inbound)))
        return "forged"

    async def _handle_locked(
        self,
        adapter: Adapter,
        inbound: Inbound,
        session: SessionRecord,
        tap: tuple[str, int, str] | None,
    ) -> str:
        flow = await self.flow_for(session)
        loc = session.state.locale
        refused = refusal(flow, session, inbound, self._lang(inbound))
        if refused is not None:  # someone else's survey, or talk in a support thread
            await adapter.acknowledge(inbound, refused[1])
            return refused[0]
        now = self.clock()
        # A tap on a scheduled session's question: it was delivered, the crash came before the
        # delivery was recorded. The button names session and question: take the answer.
        live = session.status == "active" or (session.status == "scheduled" and tap is not None)
        if session.status == "expired" or (
            live and session.expires_at and now >= session.expires_at
        ):
            await adapter.acknowledge(inbound, text_for("expired", loc, flow))
            return "expired"
        if session.status == "completed":
            await adapter.acknowledge(inbound, text_for("finished", loc, flow))
            return "finished"
        if not live:
            await adapter.acknowledge(inbound, text_for("invalid_button", loc, flow))
            return "not_active"
        if tap is not None:
            reply = Reply(kind="tap", question_index=tap[1], value=tap[2])
        else:
            reply = Reply(kind=inbound.kind, value=inbound.text)
        step = advance(flow, session.state, reply)
        if step.outcome in ("stale", "forged"):
            key = "already_answered" if step.outcome == "stale" else "invalid_button"
            await adapter.acknowledge(inbound, text_for(key, loc, flow))
            return step.outcome
        if step.outcome == "invalid":
            return await self._ask_again(adapter, flow, session, step, inbound, now)
        # A tap names its question, so a redelivered tap is already harmless (stale); typed
        # text is not, so its event id is committed with the answer and checked.
        event_id = inbound.event_id if tap is None else None
        owed = owed_for(flow, session, step, inbound, now)
        hooks = [*webhook_rows(self.webhooks, session, step, now),
                 *alert_rows(self.alerts, flow, session, step, now, inbound.user_name)]  # fmt: skip
        inbox_id = carried()
        rows = [*(owed if self.sender is not None else ()), *hooks]
        committed = await self._owing(self.storage.commit(
            session.id, session.version, state=step.state,
            status="completed" if step.outcome == "done" else "active", now=now,
            answer=step.answer, event_id=event_id, inbox_id=inbox_id, outbox=rows,
        ), rows)  # fmt: skip
        if committed.result == "conflict":
            return "conflict"
        if not committed.ok:
            # A typed reply's event id seen before is a platform redelivery: nothing to say.
            # A tap that lost the race to another tap is told the question has its answer.
            replayed = event_id is not None and committed.result == "duplicate"
            notice = None if replayed else text_for("already_answered", loc, flow)
            await adapter.acknowledge(inbound, notice)
            return "duplicate"
        assert step.answer is not None
        ticket_done(inbox_id)
        metrics.ANSWERS.labels(flow.id, step.answer.metric).inc()
        await adapter.acknowledge(inbound, None)
        if self.sender is None:
            for message in owed:
                sent = await send_now(adapter, message)
                await record_prompted(self.storage, self.flow_for, message, sent, now)
        return "answered"

    async def _ask_again(
        self,
        adapter: Adapter,
        flow: Flow,
        session: SessionRecord,
        step: Step,
        inbound: Inbound,
        now: datetime,
    ) -> str:
        """Invalid typed text: the hint and the same question, owed in one commit with the
        event id (a redelivery gets no second hint) and the inbox row."""
        hint = text_for(step.hint or "hint_text", session.state.locale, flow, step.hint_params)
        mention = session.user_name if session.chat_id else None
        prompt = question_prompt(flow, session.state, session.id, hint=hint, mention=mention)
        inbox_id = carried()
        rows = [owed_prompt(session.address, prompt, now)] if self.sender else []
        committed = await self._owing(self.storage.commit(
            session.id, session.version, state=session.state, status="active", now=now,
            event_id=inbound.event_id, inbox_id=inbox_id, outbox=rows,
        ), rows)  # fmt: skip
        if not committed.ok:  # conflict: decide again; duplicate: a redelivery, said already
            return committed.result
        ticket_done(inbox_id)
        await adapter.acknowledge(inbound, None)
        if self.sender is None:
            await adapter.send(session.address, prompt)
        return "invalid"

    # helpers -----------------------------------------------------------------------------
    def _adapter(self, platform: str) -> Adapter:
        try:
            return self.adapters[platform]
        except KeyError:
            raise DeliveryError(f"no adapter for platform {platform!r}", permanent=True) from None

    def _lang(self, inbound: Inbound) -> str:
        return primary_language(inbound.locale)

    def exclusive(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """Hold while reading and changing a session: its events, sends, reminders and expiry
        run one at a time in this process (other processes: the version check at commit)."""
        return self._sessions.hold(session_id)
