"""The dispatcher's durable job loop: ``send`` (a survey scheduled for later), ``remind`` (one
reminder after ``surveys.remind_after``) and ``expire`` (at the session's ``expires_at``).

:class:`Jobs` is mixed into :class:`bot.conversation.dispatch.Dispatcher`. :meth:`Jobs.run`
claims due jobs with a lease and finishes them only after their effect is committed, so a job
due while the process was stopped runs once after it starts: never twice, never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import metrics
from bot.conversation.admission import is_customer_started
from bot.conversation.config import SurveysConfig
from storage.base import Job, Lane, SessionRecord, Storage

if TYPE_CHECKING:
    from bot.conversation.runtime import Runtime

log = logging.getLogger(__name__)


NOT_YET_SENT = timedelta(minutes=5)  # a reminder waits this long again for its question


def lane_of(triggered_by: str) -> Lane:
    """A customer's own request is answered in the interactive lane; the rest is bulk."""
    return "interactive" if is_customer_started(triggered_by) else "bulk"


class Jobs:
    """Provided by the dispatcher: its storage, runtime, clock, settings and send helpers."""

    runtime: Runtime
    storage: Storage
    surveys: SurveysConfig
    clock: Callable[[], datetime]
    poll_interval: float
    batch: int
    lease: timedelta
    max_attempts: int

    if TYPE_CHECKING:

        async def _follow_ups(self, session: SessionRecord) -> None: ...

        def _needs_reminder(self, session: SessionRecord) -> bool: ...

    async def run(self, stop: asyncio.Event) -> None:
        """Run due jobs until ``stop`` is set; the jobs under way when it is set finish."""
        log.info("dispatcher started")
        while not stop.is_set():
            try:
                handled = await self.tick()
            except Exception:  # storage hiccup: log, wait, try again
                log.exception("dispatcher tick failed")
                handled = 0
            if handled >= self.batch:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
        log.info("dispatcher stopped")

    async def tick(self, now: datetime | None = None) -> int:
        """Claim the jobs due at ``now`` (default: the clock) and run them; how many ran."""
        jobs = await self.storage.claim_jobs(now or self.clock(), self.batch, self.lease)
        await asyncio.gather(*(self._run_job(job) for job in jobs))
        return len(jobs)

    async def _run_job(self, job: Job) -> None:
        handlers = {"send": self._send_job, "remind": self._remind_job, "expire": self._expire_job}
        try:
            outcome = await handlers[job.kind](job)
        except Exception as exc:
            log.exception("%s job for session %s failed", job.kind, job.session_id)
            outcome = await self._retry_or_give_up(job, f"{type(exc).__name__}: {exc}", None)
        metrics.JOBS.labels(job.kind, outcome).inc()

    async def _send_job(self, job: Job) -> str:
        session = await self.storage.get_session(job.session_id)
        if session is None:
            return await self._finish(job, "gone")
        if session.status != "scheduled":  # sent before a crash could finish the job
            if session.status == "active":
                await self._follow_ups(session)
            return await self._finish(job, "already_sent")
        now = self.clock()
        if session.expires_at is not None and now >= session.expires_at:
            await self.storage.update_session(
                session.id, session.version, status="expired", error="never sent"
            )
            return await self._finish(job, "expired_unsent")
        owed = await self.runtime.owe_first(session.id, lane_of(session.triggered_by))
        if owed is None:  # another worker owed it meanwhile
            return await self._finish(job, "already_sent")
        await self._follow_ups(owed)
        return await self._finish(job, "sent")

    async def _remind_job(self, job: Job) -> str:
        session = await self.storage.get_session(job.session_id)
        if session is None or not self._needs_reminder(session):
            return await self._finish(job, "skipped")
        if session.sent_at is None:  # its first question is still on its way
            await self.storage.retry_job(_id(job), self.clock() + NOT_YET_SENT, "not sent yet")
            return "deferred"
        reminded = await self.runtime.remind(session.id, self._needs_reminder)
        if reminded is None:
            return await self._finish(job, "skipped")
        if not reminded:  # an answer landed meanwhile
            await self.storage.retry_job(_id(job), self.clock(), "session changed")
            return "deferred"
        return await self._finish(job, "reminded")

    async def _expire_job(self, job: Job) -> str:
        storage = self.storage
        async with self.runtime.exclusive(job.session_id):
            session = await storage.get_session(job.session_id)
            if session is None or session.status not in ("active", "scheduled"):
                return await self._finish(job, "skipped")
            if session.expires_at is not None and self.clock() < session.expires_at:
                await storage.retry_job(_id(job), session.expires_at, "expiry moved")
                return "deferred"
            hooks = self.runtime.webhooks
            owed = hooks.owed(session, self.clock(), status="expired") if hooks else []
            result = await storage.update_session(  # the expiry and its webhook events: one
                session.id, session.version, status="expired", outbox=owed
            )
        if not result.ok:  # an answer landed meanwhile: look again shortly
            await storage.retry_job(_id(job), self.clock(), "session changed while expiring")
            return "deferred"
        return await self._finish(job, "expired")

    async def _retry_or_give_up(self, job: Job, error: str, at: datetime | None) -> str:
        if job.attempts >= self.max_attempts:
            log.error("%s job for session %s given up after %d attempts: %s", job.kind,
                      job.session_id, job.attempts, error)  # fmt: skip
            return await self._finish(job, "given_up")
        at = at or self.clock() + timedelta(seconds=min(600, 5 * 2 ** max(0, job.attempts - 1)))
        await self.storage.retry_job(_id(job), at, error)
        return "retry"

    async def _finish(self, job: Job, outcome: str) -> str:
        await self.storage.finish_job(_id(job))
        return outcome


def _id(job: Job) -> int:
    assert job.id is not None, "a claimed job has an id"
    return job.id
