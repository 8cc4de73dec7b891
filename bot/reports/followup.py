"""The follow-up of negative answers (detractor alerts): the figures of the report's section,
from the rows of :mod:`storage.followup_report`, and how they read.

Per period (the report's) and per agent (the survey context's ``agent``): the negative answers
alerted, the share followed up (someone pressed "I'll follow up", or "Resolved" first) and the
share resolved, each with its n and Wilson interval (:class:`bot.reports.model.Rate`, as every
proportion of the report), the median time from the answer to its first follow-up (computed by
the database over the followed-up ones), and the unresolved ones, oldest first. None of it is
ever shown to a customer: only `surveybot report`, the report API and the dashboard carry it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.reports.model import (
    NO_SEGMENT,
    FollowUp,
    FollowUpFigures,
    OpenFollowUp,
    Rate,
    score_text,
)
from storage.base import parse_iso
from storage.followup_report import OPEN_LIMIT
from storage.reporting import ReportRows

UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def follow_up(rows: ReportRows, now: datetime, alerts: bool | None = None) -> FollowUp:
    """The section from the ``followup``, ``followup_agent`` and ``followup_open`` rows."""
    total = [figures(r) for r in rows.get("followup", [])]
    agents = sorted((figures(r) for r in rows.get("followup_agent", [])),
                    key=lambda f: (f.agent == NO_SEGMENT, f.agent or ""))  # fmt: skip
    return FollowUp(
        alerts=alerts,
        total=total[0] if total and total[0].negatives else None,
        agents=agents,
        open=[open_follow_up(r, now) for r in rows.get("followup_open", [])],
        open_limit=OPEN_LIMIT,
    )


def figures(row: dict[str, Any]) -> FollowUpFigures:
    """One summary row: everyone's (``agent`` NULL) or one agent's ('' = none recorded)."""
    negatives, followed = int(row["negatives"]), int(row["followed"])
    median = row["median_wait"]
    agent = row["agent"]
    return FollowUpFigures(
        agent=None if agent is None else agent or NO_SEGMENT,
        negatives=negatives,
        followed_up=Rate.of(followed, negatives),
        resolved=Rate.of(int(row["resolved"]), negatives),
        median_wait=None if median is None else round(float(median), 3),
    )


def open_follow_up(row: dict[str, Any], now: datetime) -> OpenFollowUp:
    raised = _time(row["created_at"])
    assert raised is not None
    context = row["context"]
    ticket = (context if isinstance(context, dict) else json.loads(context or "{}")).get(
        "ticket_id"
    )
    name, user = row["user_name"], str(row["user_id"])
    return OpenFollowUp(
        id=int(row["id"]),
        raised_at=raised,
        age=max((now - raised).total_seconds(), 0.0),
        flow_id=row["flow_id"],
        question_id=row["question_id"],
        score=_score(row),
        platform=row["platform"],
        customer=f"{name} ({user})" if name else user,
        agent=row["agent"] or None,
        ticket=None if ticket in (None, "") else str(ticket),
        owner=row["owner"],
        owned_at=_time(row["owned_at"]),
    )


def _score(row: dict[str, Any]) -> str | None:
    metric, value = row["metric"], row["score"]
    if row["scale_max"] is None:  # the answer is gone: the value alone
        return None if value is None else f"{metric.upper()} {value}"
    return score_text(metric, value, row["scale_min"], row["scale_max"])


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else parse_iso(str(value))
    return moment.astimezone(UTC)


def fmt_wait(seconds: float | None) -> str:
    """A duration in its two largest units: ``4 min 05 s``, ``1 h 05 min``, ``2 d 03 h``;
    seconds alone below a minute, with a tenth below ten (``0.4 s``, ``42 s``); ``—`` for
    None."""
    if seconds is None:
        return "—"
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f} s"
    whole = round(seconds)
    for i, (unit, size) in enumerate(UNITS[:-1]):
        if whole >= size:
            smaller, small_size = UNITS[i + 1]
            rest = (whole % size) // small_size
            return f"{whole // size} {unit} {rest:02d} {smaller}"
    return f"{whole} s"


def fmt_share(rate: Rate) -> str:
    """``50.0% (95% CI 9.5–90.5, n=2)``; ``—`` with no negatives."""
    if rate.value is None or rate.low is None or rate.high is None:
        return "—"
    return f"{rate.value:.1f}% (95% CI {rate.low:.1f}–{rate.high:.1f}, n={rate.n})"


def empty_line(section: FollowUp) -> str | None:
    """The one line the section is when there is nothing measured; None when there is."""
    if section.total is not None:
        return None
    if section.alerts is False:
        return ("No detractor alerts are configured (alerts: in config.yaml), so there is no "
                "follow-up to measure.")  # fmt: skip
    return "No negative answer was alerted in this period."
