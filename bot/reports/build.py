"""The report behind `surveybot report`, `GET /api/v1/report` and the dashboard.

:func:`build_report` asks storage for grouped rows (:mod:`storage.reporting`: the database
aggregates) and turns them into scores with :mod:`scoring`: every score with its n and 95%
interval, per flow and question, per segment, per ISO week, plus the survey funnel, drop-off per
question, answer distributions and the latest comments. Renderers live in
:mod:`bot.reports.format` (table, JSON, CSV) and :mod:`bot.web.dashboard` (HTML).

Score cards compare with the previous period of the same length (``since`` given): the change
is ``value - previous value`` in the score's units (CSAT and rates in percentage points).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.survey.flow import Choice, Flow
from bot.survey.loader import FlowRegistry
from bot.survey.scoring import (
    Metric,
    Score,
    ces_from_sums,
    csat_from_counts,
    nps_from_totals,
    wilson,
)
from storage.base import Storage, parse_iso, utcnow
from storage.reporting import ReportQuery, ReportRows, SegmentBy

NO_SEGMENT = "(none)"  # an agent/locale that was not recorded


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
    change: float | None = None

    @property
    def title(self) -> str:
        return f"{self.metric.upper()} · {self.flow_id}/{self.question_id}"


class Trend(_Frozen):
    flow_id: str
    question_id: str
    metric: Metric
    weeks: list[ScoreLine]  # segment = the Monday of the ISO week (YYYY-MM-DD)


class Bucket(_Frozen):
    label: str
    count: int


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


async def build_report(
    storage: Storage,
    query: ReportQuery,
    registry: FlowRegistry | None = None,
    now: datetime | None = None,
) -> Report:
    """One storage call: the database aggregates, this turns its rows into scores."""
    now = now or query.now or utcnow()
    query = query.model_copy(update={"now": now})
    rows = await storage.report_rows(query)
    previous = {
        (line.flow_id, line.question_id): line.score
        for line in _score_lines(_get(rows, "previous"))
    }
    scores = [
        _compare(line, previous.get((line.flow_id, line.question_id)))
        for line in _score_lines(_get(rows, "scores"))
    ]
    before = query.previous
    return Report(
        generated_at=now,
        flow_id=query.flow_id,
        platform=query.platform,
        by=query.by,
        since=query.since,
        until=query.until,
        previous_since=before[0] if before else None,
        previous_until=before[1] if before else None,
        scores=scores,
        segments=_score_lines(_get(rows, "segments"), segmented=True),
        trends=_trends(_get(rows, "trend")),
        distributions=_distributions(_get(rows, "distribution"), registry),
        response=[_response(r, False) for r in _sorted(_get(rows, "funnel"))],
        response_segments=[_response(r, True) for r in _sorted(_get(rows, "funnel_segments"))],
        questions=_questions(_get(rows, "questions") + _get(rows, "stopped"), registry),
        comments=[_comment(r) for r in _get(rows, "comments")],
    )


def _get(rows: ReportRows, section: str) -> list[dict[str, Any]]:
    return rows.get(section, [])


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["flow_id"], _seg(r["segment"])))


def score_of(row: dict[str, Any]) -> Score:
    """The score of one grouped row of :func:`storage.reporting.report_sql` (scores, segments,
    trend sections)."""
    metric = row["metric"]
    if metric == "csat":
        return csat_from_counts(int(row["top"]), int(row["n"]))
    if metric == "nps":
        return nps_from_totals(int(row["promoters"]), int(row["detractors"]), int(row["n"]))
    if metric == "ces":
        return ces_from_sums(
            int(row["n"]), int(row["total"]), int(row["total_sq"]), int(row["agree"])
        )
    raise ValueError(f"not a scored metric: {metric!r}")


def _score_lines(rows: Iterable[dict[str, Any]], segmented: bool = False) -> list[ScoreLine]:
    """In the flows' question order, then by segment (databases return groups in any order)."""
    ordered = sorted(rows, key=lambda r: (r["flow_id"], r["question_index"], r["question_id"],
                                          _seg(r["segment"]) if segmented else ""))  # fmt: skip
    return [
        ScoreLine(
            flow_id=r["flow_id"],
            question_id=r["question_id"],
            metric=r["metric"],
            segment=_seg(r["segment"]) if segmented else None,
            score=score_of(r),
        )
        for r in ordered
    ]


def _seg(value: Any) -> str:
    return NO_SEGMENT if value is None or value == "" else str(value)


def _compare(line: ScoreLine, previous: Score | None) -> ScoreLine:
    if previous is None or previous.value is None or line.score.value is None:
        return line.model_copy(update={"previous": previous})
    return line.model_copy(
        update={"previous": previous, "change": line.score.value - previous.value}
    )


def _trends(rows: list[dict[str, Any]]) -> list[Trend]:
    series: dict[tuple[str, str, str], list[ScoreLine]] = {}
    for line in _score_lines(rows, segmented=True):
        series.setdefault((line.flow_id, line.question_id, line.metric), []).append(line)
    return [
        Trend(
            flow_id=f,
            question_id=q,
            metric=lines[0].metric,
            weeks=sorted(lines, key=lambda x: x.segment or ""),
        )
        for (f, q, _), lines in series.items()
    ]


def _distributions(rows: list[dict[str, Any]], registry: FlowRegistry | None) -> list[Distribution]:
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["flow_id"], r["question_index"], r["question_id"])):
        grouped.setdefault((r["flow_id"], r["question_id"], r["metric"]), []).append(r)
    out = []
    for (flow_id, question_id, metric), group in grouped.items():
        if metric == "choice":
            buckets = _choice_buckets(group, _flow(registry, flow_id), question_id)
            out.append(
                Distribution(
                    flow_id=flow_id, question_id=question_id, metric=metric, buckets=buckets
                )
            )
            continue
        lo = min(int(r["scale_min"]) for r in group)
        hi = max(int(r["scale_max"]) for r in group)
        counts: dict[int, int] = {}
        for r in group:
            counts[int(r["value"])] = counts.get(int(r["value"]), 0) + int(r["n"])
        binary = (lo, hi) == (0, 1)
        buckets = [
            Bucket(label=("yes" if v else "no") if binary else str(v), count=counts.get(v, 0))
            for v in (range(hi, lo - 1, -1) if binary else range(lo, hi + 1))
        ]
        out.append(
            Distribution(
                flow_id=flow_id,
                question_id=question_id,
                metric=metric,
                scale_min=lo,
                scale_max=hi,
                buckets=buckets,
            )
        )
    return out


def _choice_buckets(group: list[dict[str, Any]], flow: Flow | None, qid: str) -> list[Bucket]:
    counts = {str(r["option"]): int(r["n"]) for r in group}
    order: list[str] = []
    if flow is not None:
        for question in flow.questions:
            if question.id == qid and isinstance(question, Choice):
                order = [o.id for o in question.options]
    order += sorted(set(counts) - set(order))
    return [Bucket(label=o, count=counts.get(o, 0)) for o in order]


def _flow(registry: FlowRegistry | None, flow_id: str) -> Flow | None:
    return registry.get(flow_id) if registry is not None else None


def _response(r: dict[str, Any], segmented: bool) -> Response:
    sent, completed = int(r["sent"]), int(r["completed"])
    return Response(
        flow_id=r["flow_id"],
        segment=_seg(r["segment"]) if segmented else None,
        sent=sent,
        completed=completed,
        expired=int(r["expired"]),
        active=int(r["active"]),
        rate=Rate.of(completed, sent),
    )


def _questions(rows: list[dict[str, Any]], registry: FlowRegistry | None) -> list[QuestionFunnel]:
    """Merge answered/skipped counts (``questions``) with the sessions that stopped at each
    question (``stopped``: expired = abandoned, active = still waiting)."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["flow_id"], int(r["question_index"]))
        into = merged.setdefault(
            key, dict.fromkeys(("answered", "skipped", "abandoned", "pending"), 0)
        )
        if r["section"] == "stopped":
            into["abandoned"] += int(r["expired"])
            into["pending"] += int(r["active"])
        else:
            into["answered"] += int(r["answered"])
            into["skipped"] += int(r["skipped"])
            into["question_id"], into["metric"] = r["question_id"], r["metric"]
    out = []
    for (flow_id, index), m in sorted(merged.items()):
        flow = _flow(registry, flow_id)
        qid, metric = m.get("question_id"), m.get("metric")
        if qid is None and flow is not None and index < len(flow.questions):
            qid, metric = flow.questions[index].id, flow.questions[index].metric
        reached = m["answered"] + m["skipped"] + m["abandoned"] + m["pending"]
        out.append(
            QuestionFunnel(
                flow_id=flow_id,
                index=index,
                question_id=qid or f"#{index + 1}",
                metric=metric,
                reached=reached,
                answered=m["answered"],
                skipped=m["skipped"],
                abandoned=m["abandoned"],
                pending=m["pending"],
                completion=Rate.of(m["answered"], reached),
                drop_off=Rate.of(m["abandoned"], reached),
            )
        )
    return out


def _comment(r: dict[str, Any]) -> Comment:
    answered = r["answered_at"]
    if not isinstance(answered, datetime):
        answered = parse_iso(str(answered))
    return Comment(
        answered_at=answered.astimezone(UTC),
        flow_id=r["flow_id"],
        question_id=r["question_id"],
        text=r["text"],
        platform=r["platform"],
        locale=r["locale"],
        agent=r["agent"],
        score=_score_text(
            r["score_metric"], r["score_value"], r["score_scale_min"], r["score_scale_max"]
        ),
    )


def _score_text(
    metric: str | None, value: int | None, lo: int | None, hi: int | None
) -> str | None:
    if metric is None or value is None:
        return None
    if (lo, hi) == (0, 1):
        return f"{metric.upper()} {'yes' if value else 'no'}"
    return f"{metric.upper()} {value}/{hi}"
