"""The follow-up figures of the report on every backend: a support lead's month of detractor
alerts, some followed up quickly, some late, some never, counted per agent with the median
time from the answer to its first follow-up (odd and even numbers of follow-ups), the share
followed up and resolved, and the unresolved ones oldest first."""

from __future__ import annotations

from datetime import timedelta

from bot.reports.build import build_report
from bot.reports.model import FollowUp, FollowUpFigures, Rate
from storage.base import Storage
from storage.followup_report import followup_sql
from storage.reporting import ReportQuery
from tests.support.followup_seed import ANN, NOW, START, a_month_of_alerts, alerted, day, followed


def query(**fields: object) -> ReportQuery:
    values: dict[str, object] = {"since": START, "until": NOW, "flow_id": "nps",
                                 "platform": "telegram", "now": NOW}  # fmt: skip
    return ReportQuery.model_validate(values | fields)


async def test_followup_figures_per_period_and_agent(storage: Storage) -> None:
    ids = await a_month_of_alerts(storage)
    report = await build_report(storage, query(), now=NOW)
    section = report.followup
    assert section.total == FollowUpFigures(
        negatives=7, followed_up=Rate.of(5, 7), resolved=Rate.of(3, 7), median_wait=90.0
    )
    assert section.agents == [
        FollowUpFigures(agent="ana", negatives=2, followed_up=Rate.of(2, 2),
                        resolved=Rate.of(2, 2), median_wait=60.0),
        FollowUpFigures(agent="nick", negatives=4, followed_up=Rate.of(3, 4),
                        resolved=Rate.of(1, 4), median_wait=180.0),
        FollowUpFigures(agent="(none)", negatives=1, followed_up=Rate.of(0, 1),
                        resolved=Rate.of(0, 1), median_wait=None),
    ]  # fmt: skip
    open_ones = [(o.id, o.score, o.customer, o.agent, o.ticket, o.owner) for o in section.open]
    assert open_ones == [
        (ids["n2"], "NPS 0/10", "Customer n2 (u-n2)", "nick", "T-2", ANN),
        (ids["n3"], "NPS 6/10", "Customer n3 (u-n3)", "nick", None, ANN),
        (ids["x1"], "NPS 5/10", "Customer x1 (u-x1)", None, None, None),
        (ids["n4"], "NPS 2/10", "Customer n4 (u-n4)", "nick", "T-4", None),
    ]
    first = section.open[0]
    assert (first.raised_at, first.age) == (day(3), (NOW - day(3)).total_seconds())
    assert first.owned_at == day(3) + timedelta(minutes=3)
    assert section.total is not None and section.total.unresolved == 4


async def test_the_filters_of_the_report_apply(storage: Storage) -> None:
    await a_month_of_alerts(storage)
    everything = await build_report(storage, ReportQuery(now=NOW), now=NOW)
    assert everything.followup.total is not None and everything.followup.total.negatives == 10
    assert len(everything.followup.open) == 7  # 10 raised, 3 resolved
    slack = await build_report(storage, query(platform="slack"), now=NOW)
    assert slack.followup.total is not None and slack.followup.total.negatives == 1
    one_week = await build_report(storage, query(until=day(3)), now=NOW)
    assert one_week.followup.total == FollowUpFigures(
        negatives=2, followed_up=Rate.of(2, 2), resolved=Rate.of(2, 2), median_wait=45.0
    )  # n1 (60 s) and a1 (30 s): an even number, the mean of the two
    assert one_week.followup.open == []


async def test_no_alert_in_the_period_is_no_figures_not_zeros(storage: Storage) -> None:
    report = await build_report(storage, query(), now=NOW)
    assert report.followup == FollowUp(open_limit=report.followup.open_limit)
    await a_month_of_alerts(storage)
    later = await build_report(storage, query(since=NOW, until=NOW + timedelta(days=7)), now=NOW)
    assert later.followup.total is None and later.followup.agents == []


def test_postgres_statements_number_their_parameters() -> None:
    for statement in followup_sql(query(), "postgres"):
        assert "?" not in statement.sql
        assert f"${len(statement.params)}" in statement.sql
        assert f"${len(statement.params) + 1}" not in statement.sql


async def test_the_time_to_follow_up_is_exact_below_the_second(storage: Storage) -> None:
    """Raised at .999999 of a second, followed up 329.250002 s later: 329.25 s to the
    millisecond on both backends (SQLite's own rounding of fractions is kept out of it)."""
    raised = day(1).replace(microsecond=999_999)
    fid = await alerted(storage, "s1", "nick", raised)
    await followed(storage, fid, raised, timedelta(seconds=329, microseconds=250_002))
    report = await build_report(storage, query(), now=NOW)
    assert report.followup.total is not None and report.followup.total.median_wait == 329.25
