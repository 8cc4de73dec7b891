"""The ``surveys:`` section of config.yaml and the platforms' ``rate_limit:`` budgets: what the
conversation layer is configured with (expiry, reminders, throttling, milestone events, send
budgets). It lives here, below :mod:`bot.settings`, so that the dispatcher and the sender take
their policy as plain values and never read the process settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from bot.conversation.budget import Limits
from bot.survey.flow import Duration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelegramRateLimit(_Section):
    """``telegram.rate_limit``: Telegram's published limits (core.telegram.org/bots/faq): about
    30 messages per second to different chats, about 1 per second to one chat (short bursts
    tolerated), at most 20 per minute to one group. 0 turns a limit off (a local Bot API
    server, paid broadcasts with ``allow_paid_broadcast`` at up to 1,000/s, tests)."""

    messages_per_second: float = Field(default=30, ge=0)
    per_chat_per_second: float = Field(default=1, ge=0)
    chat_burst: int = Field(default=4, ge=0)  # messages one chat may get at once
    group_per_minute: float = Field(default=20, ge=0)
    bulk_min_share: float = Field(default=0.2, ge=0, le=1)  # of each second, bulk's while it waits

    def limits(self) -> Limits:
        return Limits(self.messages_per_second, self.per_chat_per_second, self.chat_burst,
                      self.group_per_minute, self.bulk_min_share)  # fmt: skip


class SlackRateLimit(_Section):
    """``slack.rate_limit``: chat.postMessage allows about 1 message per second per channel
    (short bursts tolerated); Slack publishes no fixed workspace-wide figure for it, so the
    overall pace is the 20/s surveybot has always kept for Slack (a 429 beyond it pauses the
    workspace for exactly Retry-After). 0 turns a limit off."""

    messages_per_second: float = Field(default=20, ge=0)
    per_channel_per_second: float = Field(default=1, ge=0)
    channel_burst: int = Field(default=3, ge=0)
    bulk_min_share: float = Field(default=0.2, ge=0, le=1)

    def limits(self) -> Limits:
        return Limits(self.messages_per_second, self.per_channel_per_second,
                      self.channel_burst, 0, self.bulk_min_share)  # fmt: skip


class MilestoneEvent(_Section):
    flow: str
    delay: Duration = timedelta(0)


class SurveysConfig(_Section):
    expires_after: Duration = timedelta(hours=72)
    remind_after: Duration | None = timedelta(hours=24)
    throttle: Duration = timedelta(days=30)
    throttle_per_flow: dict[str, Duration] = Field(default_factory=dict)
    events: dict[str, MilestoneEvent] = Field(default_factory=dict)

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
    # seconds an edge waits for an event handled before it is stored (SQLite): one customer's
    # step then costs no write of its own; a handling that takes longer is stored, leased to
    # it, and the edge acknowledges. 0: every event is stored first, then handled.
    handle_first: float = Field(default=0.25, ge=0, le=2)


class OutboxConfig(_Section):
    """The ``outbox:`` section: how long a message the sender took is its own (``lease``: after
    a crash, a message the dead sender held goes out when this runs out, and that chat's later
    messages wait behind it; other chats do not). Keep it longer than a send takes, or a slow
    send goes out twice (harmless, but seen)."""

    lease: Duration = timedelta(seconds=15)
