"""The report behind `surveybot report`, `GET /api/v1/report` and the dashboard.

:func:`build_report` asks storage for grouped rows (:mod:`storage.reporting`: the database
aggregates) and turns them into scores with :mod:`bot.survey.scoring`: every score with its n
and 95% interval, per flow and question, per segment, per ISO week, plus the survey funnel,
drop-off per question, answer distributions, the latest comments and (on request) the comment
themes (:mod:`bot.reports.themes`). The model is in :mod:`bot.reports.model`; renderers in
:mod:`bot.reports.format` (table, JSON, CSV) and :mod:`bot.reports.page` (HTML).

What changed (:mod:`bot.survey.change`): score cards against the previous period of the same
length (``since`` given); segment lines against everyone else in the period, whose aggregates
are the flow's minus the segment's (counts and sums add up).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bot.reports.followup import follow_up
from bot.reports.model import (
    NO_SEGMENT,
    Bucket,
    Comment,
    Distribution,
    QuestionFunnel,
    Rate,
    Report,
    Response,
    ScoreLine,
    Trend,
    score_text,
)
from bot.reports.themes import CommentIn, themes
from bot.survey.change import compare
from bot.survey.flow import Choice, Flow, localize
from bot.survey.loader import FlowRegistry
from bot.survey.scoring import Score, ces_from_sums, csat_from_counts, nps_from_totals
from storage.base import Storage, parse_iso, utcnow
from storage.reporting import ReportQuery, ReportRows

__all__ = ["NO_SEGMENT", "Report", "ScoreLine", "build_report", "score_of"]
SUMS = ("n", "top", "promoters", "detractors", "total", "total_sq", "agree")


async def build_report(
    storage: Storage,
    query: ReportQuery,
    registry: FlowRegistry | None = None,
    now: datetime | None = None,
    alerts: bool | None = None,
) -> Report:
    """One storage call: the database aggregates, this turns its rows into scores.
    ``alerts``: whether detractor alerts are configured (the follow-up section says so when
    there is nothing to show)."""
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
    names = {f: flow.name for f in registry.ids() if (flow := registry.get(f))} if registry \
        else {}  # fmt: skip
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
        segments=_versus_others(_get(rows, "segments"), _get(rows, "scores")),
        trends=_trends(_get(rows, "trend")),
        distributions=_distributions(_get(rows, "distribution"), registry),
        response=[_response(r, False) for r in _sorted(_get(rows, "funnel"))],
        response_segments=[_response(r, True) for r in _sorted(_get(rows, "funnel_segments"))],
        questions=_questions(_get(rows, "questions") + _get(rows, "stopped"), registry),
        comments=[_comment(r) for r in _get(rows, "comments")],
        flow_names=names,
        themes=themes(_comment_in(r) for r in _get(rows, "themes")),
        followup=follow_up(rows, now, alerts),
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
    change = None if previous is None else compare(line.score, previous, "previous period")
    return line.model_copy(update={"previous": previous, "change": change})


def _versus_others(
    segments: list[dict[str, Any]], overall: list[dict[str, Any]]
) -> list[ScoreLine]:
    """Segment lines, each compared with the rest of its question's answers."""
    totals = {(r["flow_id"], r["question_id"]): r for r in overall}
    lines = _score_lines(segments, segmented=True)
    rows = sorted(segments, key=lambda r: (r["flow_id"], r["question_index"], r["question_id"],
                                           _seg(r["segment"])))  # fmt: skip
    out = []
    for line, row in zip(lines, rows, strict=True):
        total = totals.get((line.flow_id, line.question_id))
        if total is None:
            out.append(line)
            continue
        rest = {**row, **{k: int(total[k] or 0) - int(row[k] or 0) for k in SUMS}}
        change = compare(line.score, score_of(rest), "everyone else")
        out.append(line.model_copy(update={"versus_others": change}))
    return out


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
    """Options in the flow's order, each with its text in the flow's first locale."""
    counts = {str(r["option"]): int(r["n"]) for r in group}
    texts: dict[str, str] = {}
    if flow is not None:
        for question in flow.questions:
            if question.id == qid and isinstance(question, Choice):
                texts = {o.id: localize(o.text, flow.fallback, flow.fallback)
                         for o in question.options}  # fmt: skip
    order = [*texts, *sorted(set(counts) - set(texts))]
    return [Bucket(label=o, count=counts.get(o, 0), text=texts.get(o)) for o in order]


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


def _comment_in(r: dict[str, Any]) -> CommentIn:
    def num(key: str) -> int | None:
        return None if r[key] is None else int(r[key])

    return CommentIn(
        flow_id=r["flow_id"],
        text=r["text"],
        locale=r["locale"] or "",
        metric=r["score_metric"],
        value=num("score_value"),
        scale_min=num("score_scale_min"),
        scale_max=num("score_scale_max"),
    )


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
        score=score_text(
            r["score_metric"], r["score_value"], r["score_scale_min"], r["score_scale_max"]
        ),
    )
