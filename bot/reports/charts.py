"""Charts for the dashboard: matplotlib (Agg, object API: no global pyplot state, safe in
worker threads) rendered to SVG strings that are inlined in the page, so the dashboard and its
static copy need no JavaScript, CDN or network.

Weekly trends draw the score with its 95% interval as a band; distributions draw the answers
per value over the whole scale (0–10, 1–5, 1–7, yes/no) or per choice option.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.reports.model import Distribution, Trend

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "surveybot"  # stable element ids between renders
matplotlib.rcParams["svg.fonttype"] = "path"  # text as outlines: no fonts needed to view

INK, MUTED, ACCENT, BAND = "#1f2933", "#7b8794", "#2563eb", "#bfdbfe"
METRIC_RANGE = {"csat": (0.0, 100.0), "nps": (-100.0, 100.0), "ces": (1.0, 7.0)}
METRIC_LABEL = {"csat": "CSAT %", "nps": "NPS", "ces": "CES (mean, 1–7)"}
BAR_COLOURS = {"detractor": "#dc2626", "passive": "#d1d5db", "promoter": "#16a34a"}


def _figure(width: float = 6.4, height: float = 2.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    fig.patch.set_alpha(0.0)
    return fig


def _style(ax: object) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=8)
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.6)
    ax.set_axisbelow(True)


def to_svg(fig: Figure, title: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog), scaled by CSS, titled for
    screen readers."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    start = text.index("<svg")
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", text[start:], count=1, flags=re.DOTALL)
    svg = re.sub(r'\swidth="[\d.]+pt"\sheight="[\d.]+pt"', "", svg, count=1)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def trend_svg(trend: Trend) -> str:
    """Weekly score with its 95% interval as a shaded band; weeks without data are gaps."""
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax)
    by_week = {date.fromisoformat(w.segment or "1970-01-01"): w.score for w in trend.weeks}
    weeks: list[date] = []
    if by_week:  # every week from the first to the last: a week without answers is a gap
        week = min(by_week)
        while week <= max(by_week):
            weeks.append(week)
            week += timedelta(days=7)
    scores = [by_week.get(w) for w in weeks]
    nan = float("nan")
    ys = [s.value if s and s.value is not None else nan for s in scores]
    lo = [s.low if s and s.low is not None else y for s, y in zip(scores, ys, strict=True)]
    hi = [s.high if s and s.high is not None else y for s, y in zip(scores, ys, strict=True)]
    xs = list(range(len(weeks)))
    ax.fill_between(xs, lo, hi, color=BAND, alpha=0.8, linewidth=0, label="95% CI")
    for x in xs:  # a week with no neighbour has no band to join: draw it as a box
        alone = all(not 0 <= i < len(xs) or ys[i] != ys[i] for i in (x - 1, x + 1))
        if ys[x] == ys[x] and alone:  # (NaN != NaN: a week without answers)
            ax.fill_between([x - 0.2, x + 0.2], lo[x], hi[x], color=BAND, alpha=0.8,
                            linewidth=0)  # fmt: skip
    ax.plot(xs, ys, color=ACCENT, marker="o", markersize=3.5, linewidth=1.6, label="score")
    if len(weeks) <= 16:  # every point with its n, while there is room for it
        for x, y, score in zip(xs, ys, scores, strict=True):
            if score is not None and score.value is not None:
                ax.annotate(f"n={score.n}", (x, y), textcoords="offset points", xytext=(0, 6),
                            ha="center", fontsize=6.5, color=MUTED)  # fmt: skip
    bottom, top = METRIC_RANGE[trend.metric]
    ax.set_ylim(bottom, top)
    ax.set_xlim(-0.5, max(len(xs) - 0.5, 0.5))
    ax.set_ylabel(METRIC_LABEL[trend.metric], color=INK, fontsize=8)
    step = max(1, -(-len(weeks) // 8))  # at most 8 labelled weeks
    ticks = xs[::step]
    labels, year = [], 0
    for i in ticks:
        label = weeks[i].strftime("%d %b")
        if weeks[i].year != year:
            label, year = f"{label}\n{weeks[i].year}", weeks[i].year
        labels.append(label)
    ax.set_xticks(ticks, labels)
    ax.legend(loc="lower left", fontsize=7, frameon=False, ncols=2)
    title = f"{trend.metric.upper()} {trend.flow_id}/{trend.question_id} by week"
    return to_svg(fig, title)


def distribution_svg(dist: Distribution) -> str:
    """Answers per value (NPS bars coloured detractor / passive / promoter)."""
    fig = _figure(height=2.3)
    ax = fig.add_subplot()
    _style(ax)
    labels = [b.text or b.label for b in dist.buckets]
    counts = [b.count for b in dist.buckets]
    colours = [_bar_colour(dist, b.label) for b in dist.buckets]
    bars = ax.bar(labels, counts, color=colours, width=0.7)
    ax.bar_label(
        bars, labels=[str(c) if c else "" for c in counts], fontsize=7, color=INK, padding=1
    )
    ax.set_ylabel("answers", color=INK, fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.15)
    if dist.metric == "choice":
        ax.tick_params(axis="x", labelrotation=20)
    title = f"Answers to {dist.flow_id}/{dist.question_id} (n={dist.n})"
    return to_svg(fig, title)


def _bar_colour(dist: Distribution, label: str) -> str:
    if dist.metric != "nps" or not label.isdigit():
        return ACCENT
    value = int(label)
    if value <= 6:
        return BAR_COLOURS["detractor"]
    return BAR_COLOURS["passive"] if value <= 8 else BAR_COLOURS["promoter"]
