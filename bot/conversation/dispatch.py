"""Triggers and the durable job loop: the one code path every survey request goes through.

Staff commands, deep links, `surveybot send`, the HTTP API and milestone events all call
:meth:`Dispatcher.request`, which checks the flow, applies throttling, stores the session and
either sends it now or leaves a ``send`` job in storage for its time. Once a survey is sent, a
``remind`` job (after ``surveys.remind_after``) and an ``expire`` job (at the session's
``expires_at``) join it. :meth:`Dispatcher.run` claims due jobs with a lease and finishes them
only after their effect is committed, so a job due while the process was stopped runs once
after it starts: never twice, never lost. (A crash between the platform accepting a message
and the commit that records it can repeat that one message: the platform boundary is
at-least-once.)

Sends go through a :class:`RateLimiter`; a platform's flood-control answer
(``DeliveryError.retry_after``) pauses the platform and re-queues the job. Time comes from the
injected ``clock`` and waits from the injected ``sleep``, so tests never wait on the real clock.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics
from bot.chat import Address, DeliveryError
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
from bot.conversation.jobs import Jobs, _id, _Outcome
from bot.conversation.locks import KeyedLock
from bot.conversation.ratelimit import DEFAULT_RATES, RateLimiter
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
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    limiter: RateLimiter | None = None  # default: surveys.send_rates over DEFAULT_RATES
    poll_interval: float = 0.25  # seconds between looks for due jobs
    batch: int = 100  # jobs claimed per tick
    lease: timedelta = timedelta(minutes=2)  # a crashed worker's jobs return after this
    inline_wait: timedelta = timedelta(seconds=1)  # longer rate-limit waits queue a send
    max_wait: timedelta = timedelta(seconds=10)  # longer waits hand a claimed job back
    max_attempts: int = 8  # temporary delivery failures before a send is given up
    _addressees: KeyedLock[tuple[str, str, str]] = field(default_factory=KeyedLock, repr=False)

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = RateLimiter(DEFAULT_RATES | dict(self.surveys.send_rates))

    @property
    def rates(self) -> RateLimiter:
        assert self.limiter is not None
        return self.limiter

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
                return await self._send_now(earlier, flow_id, address, now)
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
        session, created = await self.runtime.create_session(
            flow_id, address, context, triggered_by=triggered_by, locale=locale,
            idempotency_key=idempotency_key, send_at=send_at,
        )  # fmt: skip
        if not created:
            return replay(session, idempotency_key, flow_id, address, context)
        if send_at is not None and send_at > now:
            await self._add_job("send", session.id, send_at)
            return TriggerResult(status="scheduled", session_id=session.id)
        return await self._send_now(session, flow_id, address, now)

    async def _stranded(self, session: SessionRecord, now: datetime) -> bool:
        """A session due now, never marked sent, with no job to send it."""
        due = session.send_at is None or session.send_at <= now
        return (session.status == "scheduled" and due
                and not await self.storage.pending_jobs(session.id))  # fmt: skip

    async def _send_now(
        self, session: SessionRecord, flow_id: str, address: Address, now: datetime
    ) -> TriggerResult:
        slot = self.rates.earliest(session.platform, _chat(session), now)
        if slot - now > self.inline_wait:
            await self._add_job("send", session.id, slot)
            reason = f"{session.platform} send rate limit: queued until {slot.isoformat()}"
            return TriggerResult(status="scheduled", session_id=session.id, reason=reason)
        try:
            outcome = await self._send(session, attempts=1)
        except Exception as exc:  # an adapter bug must not strand a stored survey
            log.exception("sending %s to %s failed; the dispatcher retries", flow_id, address)
            outcome = _Outcome("retry", f"{type(exc).__name__}: {exc}", now + timedelta(seconds=5))
        if outcome.kind == "retry":
            assert outcome.at is not None
            await self._add_job("send", session.id, outcome.at, attempts=1)
            return TriggerResult(status="scheduled", session_id=session.id, reason=outcome.error)
        if outcome.kind == "failed":
            return TriggerResult(status="failed", session_id=session.id, reason=outcome.error)
        return TriggerResult(status="sent", session_id=session.id)

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
    async def _send(self, session: SessionRecord, *, attempts: int) -> _Outcome:
        """Wait for a send slot, deliver the first question, schedule reminder and expiry."""
        await self._wait_for_slot(session)
        try:
            async with self.runtime.exclusive(session.id):
                sent = await self.runtime.deliver(session)
        except DeliveryError as exc:
            log.warning("could not send %s to %s:%s: %s", session.flow_id, session.platform,
                        session.user_id, exc)  # fmt: skip
            if exc.permanent or attempts >= self.max_attempts:
                await self.storage.update_session(
                    session.id, session.version, status="failed", error=str(exc)
                )
                return _Outcome("failed", error=str(exc))
            return _Outcome(
                "retry", error=str(exc), at=self._retry_at(session.platform, attempts, exc)
            )
        await self._follow_ups(sent)
        return _Outcome("sent")

    async def _follow_ups(self, session: SessionRecord) -> None:
        if session.expires_at is not None:
            await self._add_job("expire", session.id, session.expires_at)
        remind_after = self.surveys.remind_after
        if remind_after and session.sent_at is not None:
            at = session.sent_at + remind_after
            if session.expires_at is None or at < session.expires_at:
                await self._add_job("remind", session.id, at)

    def _needs_reminder(self, session: SessionRecord) -> bool:
        return (
            session.status == "active"
            and not session.reminded
            and session.state.current is not None
            and (session.expires_at is None or self.clock() < session.expires_at)
        )

    async def _wait_for_slot(self, session: SessionRecord) -> None:
        slot = self.rates.book(session.platform, _chat(session), self.clock())
        delay = (slot - self.clock()).total_seconds()
        if delay > 0:
            await self.sleep(delay)

    async def _deferred(self, job: Job, session: SessionRecord, now: datetime) -> bool:
        """Hand a claimed job back when its send slot is far off, so its lease cannot lapse."""
        slot = self.rates.earliest(session.platform, _chat(session), now)
        if slot - now <= self.max_wait:
            return False
        await self.storage.retry_job(_id(job), slot, "send rate limit")
        return True

    def _retry_at(self, platform: str, attempts: int, exc: DeliveryError) -> datetime:
        """The platform's retry_after when given (and the platform pauses that long), else
        exponential backoff: 5 s, 10 s, 20 s ... at most 10 minutes."""
        now = self.clock()
        if exc.retry_after is not None:
            until = now + timedelta(seconds=exc.retry_after)
            self.rates.pause(platform, until)
            return until
        return now + timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))

    def _addressee_lock(self, address: Address, flow_id: str) -> AbstractAsyncContextManager[None]:
        """Serialize the throttle check and the insert per customer and flow (one process)."""
        return self._addressees.hold((address.platform, address.user_id, flow_id))


def _chat(session: SessionRecord) -> str:
    return session.chat_id or session.user_id
