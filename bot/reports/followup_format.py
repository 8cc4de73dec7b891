"""The follow-up section (:mod:`bot.reports.followup`) as terminal tables and CSV rows.

CSV (``section``): ``followup`` rows, one per figure and segment (``segment`` = the agent,
empty for everyone): ``metric`` ``negatives`` (``count``), ``followed_up`` and ``resolved``
(percent in ``value`` with ``low``/``high``, ``count`` of ``n``), ``median_wait_seconds``
(``value``, over ``n`` followed up); ``followup_open`` rows, the unresolved ones oldest first:
``flow_id``, ``question_id``, ``score``, ``segment`` (the agent), ``answered_at`` (when the
answer was recorded), ``value`` (its age in seconds, ``metric`` ``age_seconds``),
``customer``, ``ticket``, ``owner``. With nothing measured, one ``followup`` row whose
``text`` is the section's one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich import box
from rich.table import Table

from bot.reports.followup import empty_line, fmt_share, fmt_wait
from bot.reports.model import FollowUp, FollowUpFigures, Rate

TITLE = "Follow-up of negative answers"


def followup_tables(section: FollowUp) -> list[Table | str]:
    """What `surveybot report` prints: the figures per agent, then the unresolved list; or the
    one line saying why there is nothing."""
    line = empty_line(section)
    if line is not None or section.total is None:
        return [f"{TITLE}: {line}"]
    figures = Table(title=f"{TITLE} (alerted in the period)",
                    title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    for i, name in enumerate(("Agent", "Negative", "Followed up", "Median time to follow-up",
                              "Resolved", "Unresolved")):  # fmt: skip
        figures.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
    for f in [section.total, *section.agents]:
        figures.add_row(f.agent or "everyone", str(f.negatives), fmt_share(f.followed_up),
                        _wait(f), fmt_share(f.resolved), str(f.unresolved))  # fmt: skip
    shown = len(section.open)
    total = section.total.unresolved
    title = "Unresolved, oldest first" + (f" ({shown} of {total})" if shown < total else "")
    listing = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("Raised (UTC)", "Age", "Flow", "Score", "Customer", "Platform", "Agent",
                 "Ticket", "Owner"):  # fmt: skip
        listing.add_column(name, overflow="fold")
    for o in section.open:
        listing.add_row(o.raised_at.strftime("%Y-%m-%d %H:%M"), fmt_wait(o.age), o.flow_id,
                        o.score or "—", o.customer, o.platform, o.agent or "—", o.ticket or "—",
                        o.owner or "nobody yet")  # fmt: skip
    return [figures, listing] if section.open else [figures, "Unresolved: none."]


def _wait(f: FollowUpFigures) -> str:
    if f.median_wait is None:
        return "— (none followed up)"
    return f"{fmt_wait(f.median_wait)} (n={f.followed_up.count})"


def followup_csv_rows(section: FollowUp) -> Iterator[dict[str, Any]]:
    line = empty_line(section)
    if line is not None:
        yield {"section": "followup", "text": f"{TITLE}: {line}"}
        return
    for f in ([section.total] if section.total else []) + section.agents:
        base = {"section": "followup", "segment": f.agent}
        yield {**base, "metric": "negatives", "count": f.negatives, "n": f.negatives}
        yield {**base, "metric": "followed_up", **_rate(f.followed_up)}
        yield {**base, "metric": "resolved", **_rate(f.resolved)}
        yield {**base, "metric": "median_wait_seconds", "value": f.median_wait,
               "n": f.followed_up.count}  # fmt: skip
    for o in section.open:
        yield {"section": "followup_open", "flow_id": o.flow_id, "question_id": o.question_id,
               "metric": "age_seconds", "segment": o.agent, "value": round(o.age),
               "answered_at": o.raised_at.isoformat(), "score": o.score,
               "customer": o.customer, "ticket": o.ticket, "owner": o.owner}  # fmt: skip


def _rate(rate: Rate) -> dict[str, Any]:
    return {"value": rate.value, "low": rate.low, "high": rate.high, "n": rate.n,
            "count": rate.count}  # fmt: skip
