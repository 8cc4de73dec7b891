"""The follow-up figures from the database's rows, checked against numbers worked out by hand:
shares with n and Wilson intervals (none followed up, all resolved), the median as the
database gave it (the middle one, or the mean of the two middle ones), durations people read,
and the one line shown instead of zeros when there is nothing to measure."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from bot.reports.followup import empty_line, fmt_share, fmt_wait, follow_up
from bot.reports.followup_format import followup_csv_rows, followup_tables
from bot.reports.model import FollowUp

Z = 1.959964
NOW = datetime(2024, 6, 30, 12, tzinfo=UTC)


def summary(agent: str | None, negatives: int, followed: int, resolved: int,
            waits: list[float]) -> dict[str, Any]:  # fmt: skip
    """A summary row as the database gives it, the median of ``waits`` worked out here."""
    ordered = sorted(waits)
    middle = (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2 if waits else None
    section = "followup" if agent is None else "followup_agent"
    return {"section": section, "agent": agent, "negatives": negatives, "followed": followed,
            "resolved": resolved, "waits": len(waits), "median_wait": middle}  # fmt: skip


def unresolved(fid: int, raised: datetime, **fields: Any) -> dict[str, Any]:
    row = {"section": "followup_open", "id": fid, "flow_id": "nps", "question_id": "score",
           "metric": "nps", "score": 3, "scale_min": 0, "scale_max": 10, "platform": "telegram",
           "user_id": "5001", "user_name": "Maria", "agent": "nick",
           "context": '{"ticket_id": "T-7", "agent": "nick"}',
           "created_at": raised.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "owner": None,
           "owned_at": None}  # fmt: skip
    return row | fields


def wilson_upper_at_zero(n: int) -> float:
    """0 of n: the interval is 0 to z²/(n + z²)."""
    return 100 * Z * Z / (n + Z * Z)


def test_an_odd_number_of_follow_ups_has_the_middle_one_as_median() -> None:
    rows = {"followup": [summary(None, 4, 3, 1, [600, 60, 180])]}
    total = follow_up(rows, NOW).total
    assert total is not None and total.median_wait == 180.0
    assert fmt_wait(total.median_wait) == "3 min 00 s"


def test_an_even_number_of_follow_ups_has_the_mean_of_the_two_middle_ones() -> None:
    rows = {"followup": [summary(None, 4, 4, 0, [30, 90, 120, 7200])]}
    total = follow_up(rows, NOW).total
    assert total is not None and total.median_wait == 105.0  # (90 + 120) / 2
    assert fmt_wait(total.median_wait) == "1 min 45 s"


def test_none_followed_up_is_zero_percent_with_an_interval_and_no_median() -> None:
    rows = {"followup": [summary(None, 3, 0, 0, [])]}
    total = follow_up(rows, NOW).total
    assert total is not None
    assert (total.followed_up.value, total.followed_up.low) == (0.0, 0.0)
    assert total.followed_up.high is not None
    assert math.isclose(total.followed_up.high, wilson_upper_at_zero(3), abs_tol=1e-4)
    assert fmt_share(total.followed_up) == "0.0% (95% CI 0.0–56.1, n=3)"
    assert total.median_wait is None and fmt_wait(total.median_wait) == "—"
    table = render(follow_up(rows, NOW))
    assert "— (none followed up)" in table and "0 s" not in table


def test_all_resolved_is_a_hundred_percent_and_nothing_left_open() -> None:
    rows = {"followup": [summary(None, 4, 4, 4, [60, 60, 120, 240])]}
    section = follow_up(rows, NOW)
    assert section.total is not None and section.total.unresolved == 0
    resolved = section.total.resolved
    assert (resolved.value, resolved.high) == (100.0, 100.0)
    assert resolved.low is not None
    assert math.isclose(resolved.low, 100 - wilson_upper_at_zero(4), abs_tol=1e-4)  # 4/(4+z²)
    assert fmt_share(resolved) == "100.0% (95% CI 51.0–100.0, n=4)"
    assert "Unresolved: none." in render(section)


def test_one_negative_followed_up_after_two_minutes() -> None:
    """The story's report: 1 negative, 100% followed up, the time to follow-up."""
    section = follow_up({"followup": [summary(None, 1, 1, 0, [125.4])]}, NOW)
    assert section.total is not None
    assert fmt_share(section.total.followed_up) == "100.0% (95% CI 20.7–100.0, n=1)"
    assert fmt_wait(section.total.median_wait) == "2 min 05 s"


def test_agents_are_listed_by_name_and_the_surveys_without_one_last() -> None:
    rows = {"followup": [summary(None, 4, 2, 1, [10, 20])],
            "followup_agent": [summary("nick", 2, 1, 0, [10]), summary("", 1, 0, 0, []),
                               summary("ana", 1, 1, 1, [20])]}  # fmt: skip
    section = follow_up(rows, NOW)
    assert [f.agent for f in section.agents] == ["ana", "nick", "(none)"]
    assert [f.negatives for f in section.agents] == [1, 2, 1]


def test_the_unresolved_list_shows_who_what_and_how_long() -> None:
    raised = NOW - timedelta(days=2, hours=3, minutes=20)
    owned = raised + timedelta(minutes=5)
    rows = {"followup": [summary(None, 3, 1, 1, [300])],
            "followup_open": [unresolved(7, raised, owner="slack:U0ANN",
                                         owned_at=owned.isoformat()),
                              unresolved(9, NOW - timedelta(seconds=42), user_name=None,
                                         context={}, scale_max=None, agent=None)]}  # fmt: skip
    first, second = follow_up(rows, NOW).open
    assert (first.score, first.customer, first.ticket, first.owner, first.owned_at) == (
        "NPS 3/10",
        "Maria (5001)",
        "T-7",
        "slack:U0ANN",
        owned,
    )
    assert first.raised_at == raised and fmt_wait(first.age) == "2 d 03 h"
    assert (second.score, second.customer, second.ticket, second.agent) == (
        "NPS 3",
        "5001",
        None,
        None,
    )  # the answer's scale unknown: the value alone
    assert fmt_wait(second.age) == "42 s"
    csv = list(followup_csv_rows(follow_up(rows, NOW)))
    opened = [r for r in csv if r["section"] == "followup_open"]
    assert [(r["customer"], r["ticket"], r["owner"], r["value"]) for r in opened] == [
        ("Maria (5001)", "T-7", "slack:U0ANN", 184800),
        ("5001", None, None, 42),
    ]


def test_durations_read_in_their_two_largest_units() -> None:
    cases = {0: "0.0 s", 0.44: "0.4 s", 9.94: "9.9 s", 9.96: "10 s", 42: "42 s",
             59.6: "1 min 00 s", 245: "4 min 05 s", 3600: "1 h 00 min",
             3900: "1 h 05 min", 183_600: "2 d 03 h"}  # fmt: skip
    assert {s: fmt_wait(s) for s in cases} == cases


def test_nothing_alerted_is_one_line_not_zeros() -> None:
    none = follow_up({"followup": [summary(None, 0, 0, 0, [])]}, NOW)
    assert none.total is None
    assert empty_line(none) == "No negative answer was alerted in this period."
    assert render(none).strip() == (
        "Follow-up of negative answers: No negative answer was alerted in this period."
    )
    off = follow_up({}, NOW, alerts=False)
    assert empty_line(off) == ("No detractor alerts are configured (alerts: in config.yaml), "
                               "so there is no follow-up to measure.")  # fmt: skip
    assert list(followup_csv_rows(off)) == [
        {"section": "followup", "text": f"Follow-up of negative answers: {empty_line(off)}"}
    ]
    assert "0.0%" not in render(off)


def render(section: FollowUp) -> str:
    console = Console(width=200, record=True, file=None)
    with console.capture() as captured:
        for part in followup_tables(section):
            console.print(part, markup=False)
    return captured.get()
