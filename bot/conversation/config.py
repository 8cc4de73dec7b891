"""The ``surveys:`` section of config.yaml: what the conversation layer is configured with
(expiry, reminders, throttling, milestone events, send rates). It lives here, below
:mod:`bot.settings`, so that the dispatcher takes its policy as a plain value and never reads
the process settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from bot.conversation.ratelimit import DEFAULT_RATES, SendRate
from bot.survey.flow import Duration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MilestoneEvent(_Section):
    flow: str
    delay: Duration = timedelta(0)


class SurveysConfig(_Section):
    expires_after: Duration = timedelta(hours=72)
    remind_after: Duration | None = timedelta(hours=24)
    throttle: Duration = timedelta(days=30)
    throttle_per_flow: dict[str, Duration] = Field(default_factory=dict)
    events: dict[str, MilestoneEvent] = Field(default_factory=dict)
    # outgoing sends per platform (survey sends and reminders): see bot/conversation/ratelimit.py
    send_rates: dict[str, SendRate] = Field(default_factory=lambda: dict(DEFAULT_RATES))

    def throttle_for(self, flow_id: str) -> timedelta:
        """How long after asking a customer ``flow_id`` they are not asked it again."""
        return self.throttle_per_flow.get(flow_id, self.throttle)


class InboxConfig(_Section):
    """The ``inbox:`` section: how often a failing platform event is tried before it is
    quarantined (``surveybot inbox``), the waits between tries, how long handled events
    are kept, and how long a claimed event is a worker's own (``lease``: after a crash, that
    customer's later events wait this long for the event the dead worker held)."""

    attempts: int = Field(default=5, ge=1)
    backoff: tuple[Duration, ...] = (
        timedelta(seconds=1), timedelta(seconds=5), timedelta(seconds=30),
        timedelta(seconds=120),
    )  # fmt: skip
    retention: Duration = timedelta(days=7)
    lease: Duration = timedelta(seconds=15)
