"""Renderers of a a :class:`Report`: rich tables for people, JSON and CSV for programs.

JSON is the report model itself (the same document as ``GET /api/v1/report``). CSV is one tidy
table, a row per figure: ``section`` says what the row is (``score``, ``segment``, ``week``,
``response``, ``response_segment``, ``completion``, ``drop_off``, and with comments
``comment``: the text, with the session's score in ``score`` and the platform in
``segment``; with themes ``theme``: the term in ``text``, its side in ``segment``, its
z-score in ``value`` and its comments in ``count``; ``followup`` and ``followup_open``, the
follow-up of negative answers, see :mod:`bot.reports.followup_format`);
``value``/``low``/``high`` are in the figure's units (percent for CSAT and rates, points for
NPS, the mean for CES) and ``n`` is what it is computed from. Score rows carry their
comparison (with the previous period for ``score``, with everyone else for ``segment``):
``difference``, its ``difference_low`` and ``difference_high``, ``p_value``, ``change`` (the
plain word) and ``more_answers``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bot.reports.cells import safe_row
from bot.reports.followup_format import followup_csv_rows, followup_tables
from bot.reports.model import Rate, Report, ScoreLine
from bot.reports.themes import FlowThemes
from bot.survey.change import Change
from bot.survey.scoring import Score

CSV_COLUMNS = [
    "section",
    "flow_id",
    "question_id",
    "metric",
    "segment",
    "value",
    "low",
    "high",
    "n",
    "agree_pct",
    "agree_low",
    "agree_high",
    "count",
    "answered_at",
    "score",
    "text",
    "difference",
    "difference_low",
    "difference_high",
    "p_value",
    "change",
    "more_answers",
    "customer",
    "ticket",
    "owner",
]
PLACES = {"csat": 1, "nps": 1, "ces": 2}


def to_json(report: Report) -> str:
    return report.model_dump_json(indent=2)


def fmt_value(score: Score) -> str:
    if score.value is None:
        return "no data"
    return f"{score.value:.{PLACES[score.metric]}f}" + ("%" if score.metric == "csat" else "")


def fmt_ci(score: Score) -> str:
    if score.low is None or score.high is None:
        return "—"
    p = PLACES[score.metric]
    sep = " to " if score.low < 0 or score.high < 0 else "–"
    return f"{score.low:.{p}f}{sep}{score.high:.{p}f}"


def fmt_change(change: Change | None, previous: Score | None = None) -> str:
    """``+2.2 pts (95% CI −30.1 to 34.5), up, not significant (n too small)``."""
    if change is not None:
        return change.label()
    return "—" if previous is None or previous.value is None else "no data"


def fmt_shares(score: Score) -> str:
    """NPS promoters / passives / detractors in percent, e.g. ``50% / 28% / 22%``."""
    shares = [score.share(g) for g in ("promoters", "passives", "detractors")]
    if any(s is None for s in shares):
        return ""
    return " / ".join(f"{s:.0f}%" for s in shares if s is not None)


def fmt_rate(rate: Rate) -> str:
    if rate.value is None or rate.low is None or rate.high is None:
        return "no data"
    return f"{rate.value:.1f}% ({rate.low:.1f}–{rate.high:.1f})"


def fmt_rate_ci(rate: Rate) -> str:
    if rate.low is None or rate.high is None:
        return "—"
    return f"{rate.low:.1f}–{rate.high:.1f}"


def fmt_agree(score: Score) -> str:
    if score.agree_pct is None:
        return ""
    return f"{score.agree_pct:.1f}% agree ({score.agree_low:.1f}–{score.agree_high:.1f})"


def _share(count: int, n: int) -> str:
    return f"{100 * count / n:.0f}%" if n else "—"


def period_text(report: Report) -> str:
    since = report.since.strftime("%Y-%m-%d %H:%M") if report.since else "the beginning"
    until = report.until.strftime("%Y-%m-%d %H:%M") if report.until else "now"
    filters = [f"flow {report.flow_id}" if report.flow_id else "all flows"]
    if report.platform:
        filters.append(f"platform {report.platform}")
    return f"{', '.join(filters)}; from {since} to {until} (UTC)"


def _table(title: str, columns: list[str], rows: list[list[str]], left: int) -> Table:
    """A rich table whose first ``left`` columns are text and the rest right-aligned figures."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, name in enumerate(columns):
        if i < left:
            table.add_column(name, overflow="fold", min_width=min(len(name), 8))
        else:
            table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _pct(rate: Rate) -> str:
    return "—" if rate.value is None else f"{rate.value:.1f}%"


def _score_rows(lines: list[ScoreLine], segmented: bool, compare: bool) -> list[list[str]]:
    rows = []
    for line in lines:
        s = line.score
        extra = f"{s.agree_pct:.1f}% agree" if s.agree_pct is not None else fmt_shares(s)
        row = [line.segment or ""] if segmented else []
        row += [line.flow_id, line.question_id, line.metric.upper(), fmt_value(s), fmt_ci(s),
                str(s.n), extra]  # fmt: skip
        if segmented:
            row.append(fmt_change(line.versus_others))
        rows.append([*row, fmt_change(line.change, line.previous)] if compare else row)
    return rows


def render_table(report: Report, console: Console, comments: bool = False) -> None:
    """The report for a terminal: scores, segments, response, drop-off, comments. Every
    score shows its 95% interval and n; JSON and CSV carry the intervals of the rates too."""
    console.print(f"[bold]surveybot report[/bold] — {period_text(report)}")
    if not report.scores and not report.response:
        console.print("no answers or surveys sent match these filters")
        return
    columns = ["Flow", "Question", "Metric", "Score", "95% CI", "n", "Agree / P·P·D"]
    compare = report.previous_since is not None
    console.print(_table("Scores", columns + (["vs previous period"] if compare else []),
                         _score_rows(report.scores, False, compare), 3))  # fmt: skip
    if report.by and report.segments:
        console.print(_table(f"By {report.by}", [report.by.title(), *columns,
                             "vs everyone else"], _score_rows(report.segments, True, False),
                             4))  # fmt: skip
    seg = ["Segment"] if report.by else []
    response = [
        [r.flow_id, *([r.segment or "all"] if report.by else []), str(r.sent), str(r.completed),
         str(r.expired), str(r.active), _pct(r.rate), fmt_rate_ci(r.rate)]
        for r in report.response + report.response_segments
    ]  # fmt: skip
    console.print(_table("Response (surveys sent in the period)",
                         ["Flow", *seg, "Sent", "Completed", "Expired", "Waiting", "Response",
                          "95% CI"], response, 1 + len(seg)))  # fmt: skip
    questions = [
        [q.flow_id, str(q.index + 1), q.question_id, str(q.reached), str(q.answered),
         str(q.skipped), str(q.abandoned), str(q.pending), _pct(q.completion), _pct(q.drop_off)]
        for q in report.questions
    ]  # fmt: skip
    title = "Completion and drop-off per question (sessions sent in the period)"
    # the dashboard's column names, so the same figure is called the same everywhere
    names = ["Flow", "#", "Question", "Reached", "Answered", "Skipped", "Abandoned", "Waiting",
             "Completion", "Drop-off"]  # fmt: skip
    console.print(_table(title, names, questions, 3))
    choices = [
        [d.flow_id, d.question_id, b.text or b.label, str(b.count), _share(b.count, d.n)]
        for d in report.distributions if d.metric == "choice" for b in d.buckets
    ]  # fmt: skip
    if choices:
        console.print(_table("Choice questions", ["Flow", "Question", "Answer", "Count", "Share"],
                             choices, 3))  # fmt: skip
    for flow in report.themes:
        console.print(themes_table(flow, report.flow_name(flow.flow_id)))
    for part in followup_tables(report.followup):
        console.print(part, markup=False)
    if comments:
        table = Table(title="Latest comments", title_justify="left", box=box.SIMPLE_HEAD)
        for name in ("When (UTC)", "Flow", "Score", "Platform", "Agent", "Comment"):
            table.add_column(name)
        for c in report.comments:
            table.add_row(
                c.answered_at.strftime("%Y-%m-%d %H:%M"),
                c.flow_id,
                c.score or "—",
                c.platform,
                c.agent or "—",
                c.text,
            )
        console.print(table)


def themes_table(flow: FlowThemes, name: str) -> Table:
    """What unhappy and happy customers' comments say, side by side."""
    title = (f"Comment themes · {name}: {flow.negative_name} ({flow.negative_comments} comments)"
             f" vs {flow.positive_name} ({flow.positive_comments})")  # fmt: skip
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Side", "Theme", "Comments", "Other side", "z", "Examples"):
        table.add_column(column, justify="right" if column in ("Comments", "Other side", "z")
                         else "left", overflow="fold")  # fmt: skip
    for side, themes in ((flow.negative_name, flow.negative), (flow.positive_name, flow.positive)):
        for t in themes:
            examples = " | ".join(f"“{e}”" for e in t.examples)
            table.add_row(side, t.label, str(t.count), str(t.other_count), f"{t.z:.1f}", examples)
    if not flow.negative and not flow.positive:
        both = flow.negative_comments and flow.positive_comments
        table.add_row("—", "no words set the sides apart yet" + ("" if both else
                      " (needs comments from both sides)"), "", "", "", "")  # fmt: skip
    return table


def _change_columns(change: Change | None) -> dict[str, Any]:
    if change is None:
        return {}
    return {"difference": change.difference, "difference_low": change.low,
            "difference_high": change.high, "p_value": change.p_value, "change": change.word,
            "more_answers": change.more}  # fmt: skip


def csv_rows(report: Report, comments: bool = False) -> Iterator[dict[str, Any]]:
    for section, lines in (
        ("score", report.scores),
        ("segment", report.segments),
        ("week", [w for t in report.trends for w in t.weeks]),
    ):
        for line in lines:
            s = line.score
            yield {
                **_change_columns(line.change or line.versus_others),
                "section": section,
                "flow_id": line.flow_id,
                "question_id": line.question_id,
                "metric": line.metric,
                "segment": line.segment,
                "value": s.value,
                "low": s.low,
                "high": s.high,
                "n": s.n,
                "agree_pct": s.agree_pct,
                "agree_low": s.agree_low,
                "agree_high": s.agree_high,
            }
    for section, responses in (
        ("response", report.response),
        ("response_segment", report.response_segments),
    ):
        for r in responses:
            yield {
                "section": section,
                "flow_id": r.flow_id,
                "metric": "response_rate",
                "segment": r.segment,
                **_rate(r.rate),
            }
    for q in report.questions:
        for section, rate in (("completion", q.completion), ("drop_off", q.drop_off)):
            yield {
                "section": section,
                "flow_id": q.flow_id,
                "question_id": q.question_id,
                "metric": q.metric,
                **_rate(rate),
            }
    if comments:
        for c in report.comments:
            yield {
                "section": "comment",
                "flow_id": c.flow_id,
                "question_id": c.question_id,
                "segment": c.platform,
                "answered_at": c.answered_at.isoformat(),
                "metric": "text",
                "score": c.score,
                "text": c.text,
            }

    for flow in report.themes:
        for side, themes in (("negative", flow.negative), ("positive", flow.positive)):
            for t in themes:
                yield {"section": "theme", "flow_id": flow.flow_id, "metric": flow.metric,
                       "segment": side, "value": t.z, "count": t.count,
                       "text": t.label}  # fmt: skip
    yield from followup_csv_rows(report.followup)


def _rate(rate: Rate) -> dict[str, Any]:
    return {
        "value": rate.value,
        "low": rate.low,
        "high": rate.high,
        "n": rate.n,
        "count": rate.count,
    }


def to_csv(report: Report, comments: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(report, comments):
        writer.writerow(safe_row(row))
    return buffer.getvalue()
