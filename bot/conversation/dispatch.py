"""Triggers: the one code path every survey request goes through.

Staff commands, deep links, `surveybot send`, the HTTP API and milestone events all call
:meth:`Dispatcher.request`, which checks the flow, applies throttling and idempotency, and
stores the session: with its first question owed (an outbox row in the same transaction, the
sender delivers it) when it is due now, or ``scheduled`` with a ``send`` job for its time. A
``remind`` job (after ``surveys.remind_after``) and an ``expire`` job (at ``expires_at``)
join it; the job loop is :mod:`bot.conversation.jobs`.

The pace of sends is the sender's (:mod:`bot.conversation.budget`: platform limits, customers'
replies before bulk), not the dispatcher's. Time comes from the injected ``clock``, so tests
never wait on the real clock.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics
from bot.chat import Address
from bot.conversation.admission import (
    InvalidContext,
    TriggerResult,
    context_problem,
    is_customer_started,
    replay,
    same_request,
    thank_again,
    throttle_reason,
    throttle_window,
)
from bot.conversation.config import SurveysConfig
from bot.conversation.jobs import Jobs, lane_of
from bot.conversation.locks import KeyedLock
from bot.conversation.runtime import Runtime
from storage.base import Job, SessionRecord, Storage, utcnow

log = logging.getLogger(__name__)
__all__ = ["Dispatcher", "TriggerResult"]  # TriggerResult lives in admission


@dataclass
class Dispatcher(Jobs):
    """Requests and jobs. It shares ``storage`` with the runtime and asks the runtime only to
    create and deliver sessions, under :meth:`Runtime.exclusive` for the session at hand."""

    runtime: Runtime
    storage: Storage
    surveys: SurveysConfig = field(default_factory=SurveysConfig)
    clock: Callable[[], datetime] = utcnow
    poll_interval: float = 0.25  # seconds between looks for due jobs
    batch: int = 100  # jobs claimed per tick
    lease: timedelta = timedelta(minutes=2)  # a crashed worker's jobs return after this
    max_attempts: int = 8  # failures of a job before it is given up
    confirm_wait: float = 10.0  # seconds staff wait to hear that a first question went out
    _addressees: KeyedLock[tuple[str, str, str]] = field(default_factory=KeyedLock, repr=False)

    # requests ----------------------------------------------------------------------------
    async def request(
        self,
        flow_id: str,
        address: Address,
        context: Mapping[str, str] | None = None,
        *,
        triggered_by: str,
        locale: str | None = None,
        send_at: datetime | None = None,
        idempotency_key: str | None = None,
        throttle: bool = True,
    ) -> TriggerResult:
        """Raises UnknownFlow for a flow that is not loaded and IdempotencyConflict for a key
        used by another request (another flow, customer or context); every other outcome is a
        result. A context over the limits is refused (``failed``, nothing stored) whoever sent
        it. ``throttle=False`` skips the throttle for staff; a customer-started request
        (``triggered_by`` ending in ``:start``) is always throttled and, when throttled, the
        customer is thanked instead of surveyed again."""
        self.runtime.flow(flow_id)  # unknown flows fail before anything is stored
        source = triggered_by.split(":", 1)[0] or "unknown"
        problem = context_problem(context)
        if problem is not None:
            metrics.SURVEY_REQUESTS.labels(source, "rejected").inc()
            return TriggerResult(status="failed", reason=problem, created=False)
        async with self._addressee_lock(address, flow_id):
            result = await self._request(
                flow_id, address, context, triggered_by=triggered_by, locale=locale,
                send_at=send_at, idempotency_key=idempotency_key,
                throttle=throttle or is_customer_started(triggered_by),
            )  # fmt: skip
        outcome = result.status if result.created or result.status == "throttled" else "duplicate"
        metrics.SURVEY_REQUESTS.labels(source, outcome).inc()
        return result

    async def _request(
        self,
        flow_id: str,
        address: Address,
        context: Mapping[str, str] | None,
        *,
        triggered_by: str,
        locale: str | None,
        send_at: datetime | None,
        idempotency_key: str | None,
        throttle: bool,
    ) -> TriggerResult:
        storage = self.storage
        now = self.clock()
        earlier = await storage.session_by_key(idempotency_key) if idempotency_key else None
        if earlier is not None:
            if await self._stranded(earlier, now) and same_request(
                earlier, flow_id, address, context
            ):  # stored, then the process died before its first question went out
                return await self._send_now(earlier, now)
            return replay(earlier, idempotency_key, flow_id, address, context)
        if throttle:
            flow = self.runtime.flow(flow_id)
            window = throttle_window(flow, self.surveys.throttle, self.surveys.throttle_per_flow)
            last = await storage.last_asked(address.platform, address.user_id, flow_id)
            if last is not None and window.total_seconds() > 0 and now - last < window:
                # the session that throttles us may be this very request, made meanwhile by
                # another worker handling the same (redelivered) event
                again = await storage.session_by_key(idempotency_key) if idempotency_key else None
                if again is not None:
                    return replay(again, idempotency_key, flow_id, address, context)
                if is_customer_started(triggered_by):
                    await thank_again(self.runtime, flow_id, address, locale, idempotency_key)
                return TriggerResult(
                    status="throttled",
                    reason=throttle_reason(address, flow_id, last, now, window),
                    created=False,
                )
        queue_at = send_at if send_at is not None and send_at > now else None
        # its jobs are stored with the session: a crash right after strands nothing
        jobs = self._follow_up_jobs if queue_at is None else (
            lambda record: [Job(kind="send", session_id=record.id, run_at=queue_at)])  # fmt: skip
        session, created = await self.runtime.create_session(
            flow_id, address, context, triggered_by=triggered_by, locale=locale,
            idempotency_key=idempotency_key, send_at=send_at,
            lane=None if queue_at is not None else lane_of(triggered_by), jobs=jobs,
        )  # fmt: skip
        if not created:
            return replay(session, idempotency_key, flow_id, address, context)
        if queue_at is not None:
            return TriggerResult(status="scheduled", session_id=session.id)
        return await self._owed(session, follow_ups=False)

    async def _stranded(self, session: SessionRecord, now: datetime) -> bool:
        """A session due now, never marked sent, with no job to send it."""
        due = session.send_at is None or session.send_at <= now
        return (session.status == "scheduled" and due
                and not await self.storage.pending_jobs(session.id))  # fmt: skip

    async def _send_now(self, session: SessionRecord, now: datetime) -> TriggerResult:
        """Owe a stored, scheduled session's first question now."""
        owed = await self.runtime.owe_first(session.id, lane_of(session.triggered_by))
        if owed is None:  # another worker owed it meanwhile
            return TriggerResult(status="sent", session_id=session.id, created=False)
        return await self._owed(owed)

    async def _owed(self, session: SessionRecord, *, follow_ups: bool = True) -> TriggerResult:
        """The first question is owed: reminder and expiry jobs (unless they were stored with
        the session), then how the send went. Staff and programs wait (up to
        ``confirm_wait``) to hear "sent" or why it failed; a customer who started the survey
        themselves is not kept waiting. (A reminder or expiry of a survey that failed finds it
        failed and does nothing.)"""
        if follow_ups:
            await self._follow_ups(session)
        if is_customer_started(session.triggered_by):
            return TriggerResult(status="sent", session_id=session.id)
        outcome = await self.runtime.first_outcome(session.id, self.confirm_wait)
        if outcome is None:
            reason = f"queued: {session.platform} has not taken it yet; it goes out in turn"
            return TriggerResult(status="scheduled", session_id=session.id, reason=reason)
        kind, why = outcome
        if kind == "queued":
            return TriggerResult(status="scheduled", session_id=session.id, reason=why)
        return TriggerResult(status=kind, session_id=session.id, reason=why)

    async def invite(self, flow_id: str, context: Mapping[str, str] | None = None) -> str:
        """A one-use token that starts ``flow_id`` with ``context`` (Telegram deep link
        ``/start <token>``). Raises UnknownFlow. 16 URL-safe characters: fits Telegram's
        64-character start parameter and never looks like a flow id. Raises InvalidContext
        for a context over the limits."""
        self.runtime.flow(flow_id)
        problem = context_problem(context)
        if problem is not None:
            raise InvalidContext(problem)
        token = secrets.token_urlsafe(12)
        await self.storage.create_invite(token, flow_id, dict(context or {}), self.clock())
        metrics.SURVEY_REQUESTS.labels("invite", "invited").inc()
        return token

    # delivery ----------------------------------------------------------------------------
    def _follow_up_jobs(self, session: SessionRecord) -> list[Job]:
        """The expiry (at ``expires_at``) and the one reminder (``remind_after`` after the
        question went out, if that is before the expiry) of a session being asked now."""
        jobs = []
        if session.expires_at is not None:
            jobs.append(Job(kind="expire", session_id=session.id, run_at=session.expires_at))
        remind_after = self.surveys.remind_after
        if remind_after:
            at = (session.sent_at or self.clock()) + remind_after
            if session.expires_at is None or at < session.expires_at:
                jobs.append(Job(kind="remind", session_id=session.id, run_at=at))
        return jobs

    async def _follow_ups(self, session: SessionRecord) -> None:
        for job in self._follow_up_jobs(session):
            await self.storage.add_job(job)

    def _needs_reminder(self, session: SessionRecord) -> bool:
        return (
            session.status == "active"
            and not session.reminded
            and session.state.current is not None
            and (session.expires_at is None or self.clock() < session.expires_at)
        )

    def _addressee_lock(self, address: Address, flow_id: str) -> AbstractAsyncContextManager[None]:
        """Serialize the throttle check and the insert per customer and flow (one process)."""
        return self._addressees.hold((address.platform, address.user_id, flow_id))
