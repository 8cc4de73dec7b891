"""The dashboard page as HTML (Jinja2, charts as inline SVG from matplotlib): no JavaScript, no
CDN. Served live by :mod:`bot.web.dashboard`; written as a static copy by `surveybot report --html`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import get_args

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bot.chat import PLATFORMS
from bot.reports.build import Rate, Report, ScoreLine
from bot.reports.charts import distribution_svg, trend_svg
from bot.reports.format import fmt_agree, fmt_ci, fmt_value, period_text
from storage.reporting import SegmentBy

PERIODS = [
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("90d", "last 90 days"),
    ("365d", "last 12 months"),
    ("all", "all time"),
]
DEFAULT_PERIOD = "30d"
SEGMENTS: tuple[SegmentBy, ...] = get_args(SegmentBy)

_env = Environment(
    loader=PackageLoader("bot.reports", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Form:
    """The filter form's choices and current values (the live dashboard only)."""

    flows: list[str]
    flow: str | None = None
    period: str = DEFAULT_PERIOD
    platform: str | None = None
    by: str = "platform"
    periods: list[tuple[str, str]] = field(default_factory=lambda: list(PERIODS))
    platforms: list[str] = field(default_factory=lambda: list(PLATFORMS))
    segments: list[str] = field(default_factory=lambda: list(SEGMENTS))


@dataclass
class Change:
    text: str
    css: str = ""


def change_of(line: ScoreLine) -> Change:
    """The card's comparison with the previous period, in the score's units."""
    if line.change is None:
        if line.previous is None or line.previous.value is None:
            return Change("no earlier data to compare")
        return Change("no data this period")
    places = 2 if line.metric == "ces" else 1
    unit = "" if line.metric == "ces" else " pts"
    arrow, css = ("▲", "up") if line.change > 0 else ("▼", "down") if line.change < 0 else ("▶", "")
    assert line.previous is not None and line.previous.value is not None
    before = fmt_value(line.previous)
    return Change(
        f"{arrow} {line.change:+.{places}f}{unit} vs previous period ({before},"
        f" n={line.previous.n})",
        css,
    )


def fmt_pct(rate: Rate) -> str:
    return "no data" if rate.value is None else f"{rate.value:.1f}%"


def fmt_rate_ci(rate: Rate) -> str:
    if rate.low is None or rate.high is None:
        return "—"
    return f"{rate.low:.1f}–{rate.high:.1f}"


def render_html(report: Report, form: Form | None = None) -> str:
    """The dashboard page; without a form it is the static copy (filters shown as text)."""
    trends = [
        (f"{t.metric.upper()} · {t.flow_id}/{t.question_id}", Markup(trend_svg(t)))
        for t in report.trends
    ]
    distributions = [
        (f"{d.flow_id}/{d.question_id} (n={d.n})", Markup(distribution_svg(d)))
        for d in report.distributions
        if d.n
    ]
    heading = "Customer satisfaction" + (f" · {report.flow_id}" if report.flow_id else "")
    return _env.get_template("dashboard.html").render(
        report=report,
        form=form,
        static=form is None,
        heading=heading,
        period=period_text(report),
        trends=trends,
        distributions=distributions,
        fmt_value=fmt_value,
        fmt_ci=fmt_ci,
        fmt_agree=fmt_agree,
        fmt_pct=fmt_pct,
        fmt_rate_ci=fmt_rate_ci,
        change_of=change_of,
    )
