"""The report's data model: what `surveybot report --format json`, ``GET /api/v1/report`` and
the dashboard show. Built by :mod:`bot.reports.build`.

Score cards carry ``change``, the comparison with the previous period of the same length
(``since`` given), and segment lines ``versus_others``, the comparison with everyone else in
the same period: :class:`bot.survey.change.Change` (difference, its 95% interval, p-value, a
plain word, and how many more answers would show the difference).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bot.reports.themes import FlowThemes
from bot.survey.change import Change
from bot.survey.flow import parse_duration
from bot.survey.scoring import Metric, Score, wilson
from storage.reporting import SegmentBy

# The period a report covers when none is named: the same for `surveybot report` and the
# dashboard, and both say it ("last 30 days" / the dates in the table's heading).
DEFAULT_PERIOD = "30d"
NO_SEGMENT = "(none)"  # an agent/locale that was not recorded


def period_start(period: str, now: datetime) -> datetime | None:
    """Where a period such as ``30d`` (any duration) starts; ``all`` means no start. Raises
    ValueError / OverflowError for what is neither."""
    return None if period == "all" else now - parse_duration(period)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rate(_Frozen):
    """``count`` of ``n`` in percent with its Wilson interval; value None when n == 0."""

    count: int
    n: int
    value: float | None
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, count: int, n: int) -> Rate:
        ci = wilson(count, n)
        if ci is None:
            return cls(count=count, n=n, value=None)
        return cls(count=count, n=n, value=100 * count / n, low=100 * ci[0], high=100 * ci[1])

    def label(self) -> str:
        if self.value is None or self.low is None or self.high is None:
            return f"no data (n={self.n})"
        return f"{self.value:.1f}% (95% CI {self.low:.1f}–{self.high:.1f}, n={self.n})"


class ScoreLine(_Frozen):
    """The score of one scored question (of one segment, or of one week)."""

    flow_id: str
    question_id: str
    metric: Metric
    segment: str | None = None
    score: Score
    previous: Score | None = None
    change: Change | None = None  # against the previous period
    versus_others: Change | None = None  # a segment against everyone else

    @property
    def title(self) -> str:
        return f"{self.metric.upper()} · {self.flow_id}/{self.question_id}"


class Trend(_Frozen):
    flow_id: str
    question_id: str
    metric: Metric
    weeks: list[ScoreLine]  # segment = the Monday of the ISO week (YYYY-MM-DD)


class Bucket(_Frozen):
    label: str  # the value, "yes"/"no", or the choice option's id
    count: int
    text: str | None = None  # the option's (or scale point's) text in the flow's first locale


class Distribution(_Frozen):
    """Answers per value over the whole scale (zeros included), or per choice option."""

    flow_id: str
    question_id: str
    metric: str
    scale_min: int | None = None
    scale_max: int | None = None
    buckets: list[Bucket]

    @property
    def n(self) -> int:
        return sum(b.count for b in self.buckets)


class Response(_Frozen):
    """Sessions sent in the period and what became of them; rate = completed / sent."""

    flow_id: str
    segment: str | None = None
    sent: int
    completed: int
    expired: int
    active: int
    rate: Rate


class QuestionFunnel(_Frozen):
    """Of the sessions that reached the question (answered, skipped, or stopped there):
    completion = answered / reached; drop-off = expired there / reached; pending = still
    waiting for an answer there."""

    flow_id: str
    index: int
    question_id: str
    metric: str | None
    reached: int
    answered: int
    skipped: int
    abandoned: int
    pending: int
    completion: Rate
    drop_off: Rate


def score_text(metric: str | None, value: int | None, lo: int | None, hi: int | None) -> str | None:
    """An answer as staff read it: ``NPS 3/10``, ``CES 2/7``, ``CSAT no`` (yes/no)."""
    if metric is None or value is None:
        return None
    if (lo, hi) == (0, 1):
        return f"{metric.upper()} {'yes' if value else 'no'}"
    return f"{metric.upper()} {value}/{hi}"


class Comment(_Frozen):
    answered_at: datetime
    flow_id: str
    question_id: str
    text: str
    platform: str
    locale: str
    agent: str | None
    score: str | None  # the session's first score, e.g. "NPS 3/10", "CSAT yes"


class FollowUpFigures(_Frozen):
    """What became of the negative answers alerted in the period (everyone's, or one agent's):
    ``followed_up`` and ``resolved`` are shares of ``negatives`` with Wilson intervals;
    ``median_wait`` is the median of the seconds from the answer to its first follow-up ("I'll
    follow up", or "Resolved" pressed first) over the ``followed_up.count`` followed up, None
    when none was."""

    agent: str | None = None  # None: everyone; NO_SEGMENT: no agent in the survey's context
    negatives: int
    followed_up: Rate
    resolved: Rate
    median_wait: float | None = None

    @property
    def unresolved(self) -> int:
        return self.negatives - self.resolved.count


class OpenFollowUp(_Frozen):
    """An alerted negative answer nobody has resolved yet."""

    id: int
    raised_at: datetime  # when the answer was recorded
    age: float  # seconds from then to the report's time
    flow_id: str
    question_id: str
    score: str | None  # e.g. "NPS 3/10", "CSAT no"
    platform: str
    customer: str  # the name when known, and the platform's user id
    agent: str | None
    ticket: str | None  # the survey context's ticket_id
    owner: str | None  # who said "I'll follow up" (staff id), None: nobody yet
    owned_at: datetime | None = None


class FollowUp(_Frozen):
    """The follow-up of detractor alerts in the period; staff-only (never sent to customers).
    ``alerts``: whether `alerts:` is configured (None when the caller did not say); ``total``
    is None when no negative answer was alerted in the period; ``open`` lists the oldest
    unresolved ones (``open_limit`` at most; ``total.unresolved`` counts them all)."""

    alerts: bool | None = None
    total: FollowUpFigures | None = None
    agents: list[FollowUpFigures] = []
    open: list[OpenFollowUp] = []
    open_limit: int = 0


class Report(_Frozen):
    generated_at: datetime
    flow_id: str | None
    platform: str | None
    by: SegmentBy | None
    since: datetime | None
    until: datetime | None
    previous_since: datetime | None
    previous_until: datetime | None
    scores: list[ScoreLine]
    segments: list[ScoreLine]
    trends: list[Trend]
    distributions: list[Distribution]
    response: list[Response]
    response_segments: list[Response]
    questions: list[QuestionFunnel]
    comments: list[Comment]
    flow_names: dict[str, str] = {}  # flow id -> its name, for titles
    themes: list[FlowThemes] = []  # with ``ReportQuery(themes=True)``
    followup: FollowUp = FollowUp()

    def flow_name(self, flow_id: str) -> str:
        return self.flow_names.get(flow_id) or flow_id
