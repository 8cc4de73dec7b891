"""Triggers: the one code path every survey request goes through.

Staff commands, deep links, `surveybot send`, the HTTP API and milestone events all call
:meth:`Dispatcher.request`, which checks the flow, applies throttling, stores the session and
either sends it now or leaves a job in storage for its time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.messages import Address, DeliveryError
from bot.runtime import Runtime
from bot.settings import SurveysConfig
from storage.base import Job, utcnow

log = logging.getLogger(__name__)


class TriggerResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["sent", "scheduled", "throttled", "failed"]
    session_id: str | None = None
    reason: str | None = None
    created: bool = True  # False when an idempotency key returned an earlier session


@dataclass
class Dispatcher:
    runtime: Runtime
    surveys: SurveysConfig = field(default_factory=SurveysConfig)
    clock: Callable[[], datetime] = utcnow

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
        """Raises UnknownFlow for a flow that is not loaded; every other outcome is a result."""
        storage = self.runtime.storage
        self.runtime.flow(flow_id)  # unknown flows fail before anything is stored
        now = self.clock()
        earlier = await storage.session_by_key(idempotency_key) if idempotency_key else None
        if earlier is not None:
            return TriggerResult(
                status=_status_of(earlier.status), session_id=earlier.id, created=False
            )
        if throttle:
            window = self.surveys.throttle_per_flow.get(flow_id, self.surveys.throttle)
            last = await storage.last_asked(address.platform, address.user_id, flow_id)
            if last is not None and window.total_seconds() > 0 and now - last < window:
                return TriggerResult(
                    status="throttled",
                    reason=f"{address.platform}:{address.user_id} was asked {flow_id!r} at "
                    f"{last.isoformat()}, within the throttle window of {window}",
                    created=False,
                )
        session, created = await self.runtime.create_session(
            flow_id, address, context, triggered_by=triggered_by, locale=locale,
            idempotency_key=idempotency_key, send_at=send_at,
        )  # fmt: skip
        if not created:
            return TriggerResult(
                status=_status_of(session.status), session_id=session.id, created=False
            )
        if send_at is not None and send_at > now:
            await storage.add_job(Job(kind="send", session_id=session.id, run_at=send_at))
            return TriggerResult(status="scheduled", session_id=session.id)
        try:
            await self.runtime.deliver(session)
        except DeliveryError as exc:
            log.warning("could not send %s to %s: %s", flow_id, address.user_id, exc)
            if exc.permanent:
                await storage.update_session(
                    session.id, session.version, status="failed", error=str(exc)
                )
                return TriggerResult(status="failed", session_id=session.id, reason=str(exc))
            retry_at = now + timedelta(seconds=exc.retry_after or 0)
            await storage.add_job(Job(kind="send", session_id=session.id, run_at=retry_at))
            return TriggerResult(status="scheduled", session_id=session.id, reason=str(exc))
        return TriggerResult(status="sent", session_id=session.id)


def _status_of(status: str) -> Literal["sent", "scheduled", "throttled", "failed"]:
    if status == "scheduled":
        return "scheduled"
    if status == "failed":
        return "failed"
    return "sent"
