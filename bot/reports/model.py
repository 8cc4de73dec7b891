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


class Comment(_Frozen):
    answered_at: datetime
    flow_id: str
    question_id: str
    text: str
    platform: str
    locale: str
    agent: str | None
    score: str | None  # the session's first score, e.g. "NPS 3/10", "CSAT yes"


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

    def flow_name(self, flow_id: str) -> str:
        return self.flow_names.get(flow_id) or flow_id
