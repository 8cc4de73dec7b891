"""The dashboard page as HTML (Jinja2, charts as inline SVG from matplotlib): no JavaScript, no
CDN. Served live by :mod:`bot.web.dashboard`; written as a static copy by `surveybot report --html`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bot.chat import PLATFORMS
from bot.reports.charts import distribution_svg, trend_svg
from bot.reports.followup import empty_line, fmt_wait
from bot.reports.format import fmt_agree, fmt_ci, fmt_value, period_text
from bot.reports.model import DEFAULT_PERIOD, Rate, Report, ScoreLine
from bot.survey.change import Change as ScoreChange
from storage.reporting import SegmentBy

PERIODS = [
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("90d", "last 90 days"),
    ("365d", "last 12 months"),
    ("all", "all time"),
]
Group = Literal["promoters", "passives", "detractors"]
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
    significance: str = ""


def change_of(line: ScoreLine) -> Change:
    """The card's comparison with the previous period: the difference in the score's units,
    then the plain word, the difference's interval and the answers still needed."""
    change = line.change
    if change is None:
        if line.previous is None or line.previous.value is None:
            return Change("no earlier data to compare")
        return Change("no data this period")
    places = 2 if line.metric == "ces" else 1
    unit = "" if line.metric == "ces" else " pts"
    up, down = change.difference > 0, change.difference < 0
    arrow, css = ("▲", "up") if up else ("▼", "down") if down else ("▶", "")
    assert line.previous is not None
    before = fmt_value(line.previous)
    text = (f"{arrow} {change.difference:+.{places}f}{unit} vs previous period ({before},"
            f" n={line.previous.n})")  # fmt: skip
    return Change(text, css + (" significant" if change.significant else ""), detail(change))


def detail(change: ScoreChange | None) -> str:
    """``up, not significant (n too small) · 95% CI −3.1 to 11.5 · ~40 more answers``."""
    if change is None:
        return ""
    parts = [change.word]
    if change.low is not None and change.high is not None:
        places = 2 if change.metric == "ces" else 1
        parts.append(f"95% CI {change.low:+.{places}f} to {change.high:+.{places}f}")
    if change.more and not change.significant:
        parts.append(f"{change.more:,} more answers would show a change this size")
    return " · ".join(parts)


def shares(line: ScoreLine) -> str:
    """``Promoters 50% · Passives 28% · Detractors 22%`` beside an NPS."""
    s = line.score
    groups: tuple[Group, ...] = ("promoters", "passives", "detractors")
    found = [(g, s.share(g)) for g in groups]
    return " · ".join(f"{g.title()} {share:.0f}%" for g, share in found if share is not None)


def fmt_pct(rate: Rate) -> str:
    return "no data" if rate.value is None else f"{rate.value:.1f}%"


def fmt_rate_ci(rate: Rate) -> str:
    if rate.low is None or rate.high is None:
        return "—"
    return f"{rate.low:.1f}–{rate.high:.1f}"


def render_html(report: Report, form: Form | None = None) -> str:
    """The dashboard page; without a form it is the static copy (filters shown as text)."""
    name = report.flow_name
    trends = [
        (f"{t.metric.upper()} · {name(t.flow_id)} / {t.question_id}", Markup(trend_svg(t)))
        for t in report.trends
    ]
    distributions = [
        (f"{name(d.flow_id)} / {d.question_id} (n={d.n})", Markup(distribution_svg(d)), d)
        for d in report.distributions
        if d.n
    ]
    heading = "Customer satisfaction" + (f" · {name(report.flow_id)}" if report.flow_id else "")
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
        detail=detail,
        shares=shares,
        flow_name=name,
        followup=report.followup,
        followup_empty=empty_line(report.followup),
        fmt_wait=fmt_wait,
    )
