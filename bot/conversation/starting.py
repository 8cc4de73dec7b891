"""Beginning a survey: the session and its first question, owed in one transaction.

A survey that starts now is stored ``active`` together with the outbox row of its first
question: lane ``interactive`` when the customer started it (deep link, ``/start``), ``bulk``
for staff, the API, the CLI, schedules and milestones. A survey for later is stored
``scheduled``; its ``send`` job owes the question at its time (:meth:`Starting.owe_first`: the
status change and the row in one transaction). Reminders are owed the same way
(:meth:`Starting.remind`: ``reminded`` and the row).

The sender delivers the rows. :meth:`Starting.record_delivery` then records ``sent_at`` (the
survey counts as sent once the platform accepted its first question), ``prompted`` and
``prompt_message_id``; :meth:`Starting.record_dead` ends a survey whose first question can
never be delivered (bot blocked, chat not found) as ``failed`` with the reason. Whoever wants
to know how a first question fared (staff waiting for "sent" or an invite link) awaits
:meth:`Starting.first_outcome`.

Without a sender (``surveybot try``: one person at a terminal; runtime tests) nothing is
queued: the question is sent at once after the commit and the outcome recorded the same way;
a temporary failure then leaves the row in the outbox for a sender.

:class:`Starting` is mixed into :class:`bot.conversation.runtime.Runtime`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypeVar

from bot import metrics
from bot.chat import Adapter, Address, DeliveryError
from bot.conversation.locks import KeyedLock
from bot.conversation.owed import owed_prompt, record_prompted
from bot.conversation.sender import Sender, send_now
from bot.conversation.ticket import carried, committed
from bot.survey.engine import begin
from bot.survey.prompts import question_prompt
from bot.survey.texts import text_for
from storage.base import Job, Lane, OutboxMessage, SessionRecord, Storage

if TYPE_CHECKING:
    from bot.survey.flow import Flow

log = logging.getLogger(__name__)
W = TypeVar("W")
FirstOutcome = tuple[Literal["sent", "failed", "queued"], str | None]
WATCHED = 1024  # first questions whose outcome is kept for a caller that may ask
RETRY_INLINE = timedelta(seconds=5)  # without a sender: a failed send is owed again after


def new_session_id() -> str:
    """12 URL-safe characters (72 random bits): short enough for callback_data, unguessable."""
    return secrets.token_urlsafe(9)


def first_question(flow: Flow, session: SessionRecord, lane: Lane, now: datetime) -> OutboxMessage:
    mention = session.user_name if session.chat_id else None
    prompt = question_prompt(flow, session.state, session.id, mention=mention)
    return owed_prompt(session.address, prompt, now).model_copy(update={"lane": lane})


def reminder(flow: Flow, session: SessionRecord, now: datetime) -> OutboxMessage:
    """The current question again, with the reminder line: bulk, like any unasked-for send."""
    mention = session.user_name if session.chat_id else None
    prompt = question_prompt(flow, session.state, session.id, mention=mention, kind="reminder")
    prompt = prompt.model_copy(update={"hint": text_for("reminder", session.state.locale, flow)})
    return owed_prompt(session.address, prompt, now).model_copy(update={"lane": "bulk"})


class Starting:
    """Mixed into :class:`~bot.conversation.runtime.Runtime`, which provides these."""

    storage: Storage
    adapters: dict[str, Adapter]
    clock: Callable[[], datetime]
    default_expiry: timedelta
    sender: Sender | None
    _sessions: KeyedLock[str]
    _first: dict[str, asyncio.Future[FirstOutcome]]

    if TYPE_CHECKING:

        def flow(self, flow_id: str) -> Flow: ...

        async def flow_for(self, session: SessionRecord) -> Flow: ...

    async def create_session(
        self,
        flow_id: str,
        address: Address,
        context: Mapping[str, str] | None = None,
        *,
        triggered_by: str = "unknown",
        locale: str | None = None,
        idempotency_key: str | None = None,
        send_at: datetime | None = None,
        lane: Lane | None = None,
        jobs: Callable[[SessionRecord], Sequence[Job]] | None = None,
    ) -> tuple[SessionRecord, bool]:
        """Store a new session; ``(session, created)``. With ``lane`` its first question is
        owed now, in that lane, in the same transaction (status ``active``); without, it is
        stored ``scheduled`` for a ``send`` job. ``jobs(record)`` (its send, or its reminder
        and expiry) are stored in that transaction too. With an idempotency key already used,
        the existing session comes back with created=False and nothing is owed again."""
        flow = self.flow(flow_id)
        await self.storage.save_flow_version(flow.id, flow.version, flow.to_json())
        if locale is None and address.platform in self.adapters:
            locale = await self.adapters[address.platform].locale_of(address)
        step = begin(flow, locale, dict(context or {}))
        now = self.clock()
        record = SessionRecord(
            id=new_session_id(),
            flow_id=flow.id,
            flow_version=flow.version,
            platform=address.platform,
            user_id=address.user_id,
            chat_id=address.chat_id,
            user_name=address.user_name,
            thread_id=address.thread_id,
            locale=step.state.locale,
            context=step.state.context,
            triggered_by=triggered_by,
            status="scheduled" if lane is None else "active",
            state=step.state,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
            send_at=send_at,
            expires_at=max(now, send_at or now) + (flow.expires_after or self.default_expiry),
        )
        owed = [] if lane is None else [first_question(flow, record, lane, now)]
        if owed:
            self._watch(record.id)
        inbox_id = carried()
        rows = owed if self.sender is not None else []
        stored = await self._owing(self.storage.create_session(
            record, inbox_id=inbox_id, outbox=rows, jobs=jobs(record) if jobs is not None else (),
        ), rows)  # fmt: skip
        committed(inbox_id)
        created = stored.id == record.id
        if not created:
            self._first.pop(record.id, None)
        elif owed:
            await self._deliver(owed)
        return stored, created

    async def owe_first(self, session_id: str, lane: Lane) -> SessionRecord | None:
        """A scheduled session's first question owed now: ``active`` and its row in one
        transaction. None if the session is not (or no longer) scheduled: another worker owed
        it, or it ended."""
        async with self._sessions.hold(session_id):
            session = await self.storage.get_session(session_id)
            if session is None or session.status != "scheduled":
                return None
            owed = [first_question(await self.flow_for(session), session, lane, self.clock())]
            self._watch(session.id)
            rows = owed if self.sender is not None else []
            moved = await self._owing(self.storage.update_session(
                session.id, session.version, status="active", outbox=rows), rows)  # fmt: skip
            if not moved.ok:
                self._first.pop(session.id, None)
                return None
        await self._deliver(owed)
        return session.model_copy(update={"status": "active", "version": moved.version})

    async def remind(self, session_id: str, due: Callable[[SessionRecord], bool]) -> bool | None:
        """Owe the reminder if ``due(session)``: ``reminded`` and its row in one transaction.
        None: not due; False: the session moved meanwhile (an answer landed); True: owed."""
        async with self._sessions.hold(session_id):
            session = await self.storage.get_session(session_id)
            if session is None or not due(session):
                return None
            owed = [reminder(await self.flow_for(session), session, self.clock())]
            rows = owed if self.sender is not None else []
            moved = await self._owing(self.storage.update_session(
                session.id, session.version, reminded=True, outbox=rows), rows)  # fmt: skip
        if moved.ok:
            await self._deliver(owed)
        return moved.ok

    async def start_survey(
        self,
        flow_id: str,
        address: Address,
        context: Mapping[str, str] | None = None,
        *,
        triggered_by: str = "unknown",
        locale: str | None = None,
        idempotency_key: str | None = None,
        lane: Lane = "interactive",
    ) -> SessionRecord:
        """Create a session and owe its first question now. The same idempotency key never
        owes it twice."""
        session, _ = await self.create_session(
            flow_id, address, context, triggered_by=triggered_by, locale=locale,
            idempotency_key=idempotency_key, lane=lane,
        )  # fmt: skip
        return session

    # what became of a first question -----------------------------------------------------
    async def first_outcome(self, session_id: str, within: float) -> FirstOutcome | None:
        """How the first question of a session owed by this process fared: ``sent``,
        ``failed`` (with the reason) or ``queued`` (a temporary failure: retried); None if
        it is still on its way after ``within`` seconds."""
        waiting = self._first.get(session_id)
        if waiting is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), within)
        except TimeoutError:
            return None
        finally:
            if waiting.done():
                self._first.pop(session_id, None)

    def _watch(self, session_id: str) -> None:
        if len(self._first) >= WATCHED:  # nobody asked about these: forget the oldest
            for old in list(self._first)[: WATCHED // 2]:
                del self._first[old]
        self._first[session_id] = asyncio.get_running_loop().create_future()

    def _settle(self, session_id: str | None, outcome: FirstOutcome) -> None:
        waiting = self._first.get(session_id or "")
        if waiting is not None and not waiting.done():
            waiting.set_result(outcome)

    async def record_delivery(self, message: OutboxMessage, message_id: str | None) -> None:
        """The sender (or an inline send) delivered ``message``: its session records it
        (:func:`bot.conversation.owed.record_prompted`)."""
        if message.kind in ("question", "reminder") and message.session_id is not None:
            async with self._sessions.hold(message.session_id):
                await record_prompted(
                    self.storage, self.flow_for, message, message_id, self.clock()
                )
            if message.kind == "question":
                self._settle(message.session_id, ("sent", None))

    async def record_dead(self, message: OutboxMessage, error: str) -> None:
        """``message`` can never be delivered. If it was a survey's first question (nothing
        was ever delivered to the customer), the survey ends ``failed`` with the reason."""
        if message.kind != "question" or message.session_id is None:
            return
        reason = error.removeprefix("DeliveryError: ")
        async with self._sessions.hold(message.session_id):
            session = await self.storage.get_session(message.session_id)
            if session is not None and session.status == "active" and session.sent_at is None:
                log.warning("could not send %s to %s:%s: %s", session.flow_id,
                            session.platform, session.user_id, reason)  # fmt: skip
                failed = await self.storage.update_session(
                    session.id, session.version, status="failed", error=reason
                )
                # its reminder and expiry (stored with it) would find it failed: done now
                for job in await self.storage.pending_jobs(session.id) if failed.ok else []:
                    assert job.id is not None, "a stored job has an id"
                    await self.storage.finish_job(job.id)
        self._settle(message.session_id, ("failed", reason))

    async def _owing(self, write: Awaitable[W], rows: Sequence[OutboxMessage]) -> W:
        """Await ``write``, which owes ``rows``; the sender claims them beside it
        (:meth:`Sender.along`: no round trip of its own where storage groups writes)."""
        if self.sender is None or not rows:
            return await write
        return await self.sender.along(write, rows)

    async def _deliver(self, owed: Sequence[OutboxMessage]) -> None:
        """Committed rows: the sender's now (it was told by :meth:`_owing`). Without a
        sender, sent at once (see above)."""
        if self.sender is not None:
            return
        for message in owed:
            adapter = self.adapters.get(message.address.platform)
            try:
                if adapter is None:
                    raise DeliveryError(f"no adapter for platform {message.address.platform!r}",
                                        permanent=True)  # fmt: skip
                message_id = await send_now(adapter, message)
            except DeliveryError as exc:
                metrics.SEND_FAILURES.labels(
                    message.address.platform, "permanent" if exc.permanent else "temporary"
                ).inc()
                if exc.permanent:
                    await self.record_dead(message, str(exc))
                    continue
                later = self.clock() + timedelta(seconds=exc.retry_after or 0) + RETRY_INLINE
                await self.storage.outbox_put(
                    [message.model_copy(update={"next_attempt_at": later})]
                )
                self._settle(message.session_id, ("queued", str(exc)))
                continue
            await self.record_delivery(message, message_id)
