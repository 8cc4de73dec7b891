"""An admin reads `surveybot report` after two weeks of customers answering on Telegram and
Slack (tests/report_seed.py), and every figure matches what they compute themselves from
`surveybot export`: scores with n and 95% intervals, segments, weekly trend, response rate,
drop-off, comments; as a table, JSON, CSV, a static HTML page and the report API."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import shutil
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from scipy import stats
from typer.testing import CliRunner

from bot.app import services
from bot.cli.core import app
from bot.settings import load_settings
from bot.web.dashboard import router
from tests.conftest import SHIPPED_FLOWS
from tests.support.report_seed import NPS_SCORES, seed, two_weeks
from tests.support.report_server import Server

MONDAY = datetime(2024, 3, 4, tzinfo=UTC)  # week 0; week 1 starts 2024-03-11
Z = stats.norm.ppf(0.975)
Row = dict[str, Any]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SURVEYBOT_* settings from the environment the tests run in."""
    for name in [k for k in os.environ if k.startswith("SURVEYBOT_") and "TEST" not in k]:
        monkeypatch.delenv(name)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """config.yaml + flows + a database with two weeks of answers."""
    shutil.copytree(SHIPPED_FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / "config.yaml").write_text(
        'flows_dir: flows\nstorage: {url: "sqlite:///surveys.db"}\n', encoding="utf-8"
    )
    asyncio.run(seed(f"sqlite:///{tmp_path / 'surveys.db'}", tmp_path / "flows",
                     two_weeks(MONDAY)))  # fmt: skip
    return tmp_path


def surveybot(workdir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--config", str(workdir / "config.yaml")])
    assert result.exit_code == 0, result.output
    return result.stdout


def report_json(workdir: Path, *args: str) -> Row:
    every = () if "--since" in args else ("--period", "all")  # the seeded answers are from 2024
    data: Row = json.loads(surveybot(workdir, "report", "--format", "json", *every, *args))
    return data


def exported(workdir: Path) -> list[Row]:
    text = surveybot(workdir, "export", "--format", "jsonl")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- the independent computation -------------------------------------------------------------


def expected(metric: str, values: list[int]) -> Row:
    """Score, interval and n from the answers themselves (the formulas of docs/reporting.md,
    with scipy's Wilson and t intervals), clipped to the scale like the report."""
    n = len(values)
    if metric == "csat":
        satisfied = sum(1 for v in values if v == 1)
        ci = stats.binomtest(satisfied, n).proportion_ci(method="wilson")
        return {"value": 100 * satisfied / n, "low": 100 * ci.low, "high": 100 * ci.high, "n": n}
    if metric == "nps":
        each = [1 if v >= 9 else -1 if v <= 6 else 0 for v in values]
        mean, half = statistics.fmean(each), Z * math.sqrt(statistics.pvariance(each) / n)
        # adjusted Wald: the answers plus 3/4 of a promoter, 3/4 of a detractor, 3/2 passive
        p, d = (each.count(1) + 0.75) / (n + 3), (each.count(-1) + 0.75) / (n + 3)
        adj = Z * math.sqrt((p + d - (p - d) ** 2) / (n + 3))
        return {"value": 100 * mean, "low": max(-100, 100 * (p - d - adj)),
                "high": min(100, 100 * (p - d + adj)), "n": n,
                "wald_low": max(-100, 100 * (mean - half)),
                "wald_high": min(100, 100 * (mean + half))}  # fmt: skip
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n))
    agree = 100 * sum(1 for v in values if v >= 5) / n
    return {"value": mean, "low": max(1, low), "high": min(7, high), "n": n,
            "agree_pct": agree}  # fmt: skip


def grouped(rows: list[Row], key: Any) -> dict[tuple[str, ...], Row]:
    values: dict[tuple[str, ...], list[int]] = defaultdict(list)
    metrics: dict[tuple[str, ...], str] = {}
    for r in rows:
        if r["metric"] in ("csat", "nps", "ces"):
            k = (*key(r), r["flow_id"], r["question_id"])
            values[k].append(int(r["value"]))
            metrics[k] = r["metric"]
    return {k: expected(metrics[k], v) for k, v in values.items()}


def reported(lines: list[Row], with_segment: bool = False) -> dict[tuple[str, ...], Row]:
    return {
        (*([line["segment"]] if with_segment else []), line["flow_id"], line["question_id"]):
        line["score"] for line in lines
    }  # fmt: skip


def assert_same(got: dict[tuple[str, ...], Row], want: dict[tuple[str, ...], Row]) -> None:
    assert got.keys() == want.keys()
    for key, figures in want.items():
        for name, value in figures.items():
            assert got[key][name] == pytest.approx(value, abs=1e-9), (key, name)


def monday_of(timestamp: str) -> str:
    day = date.fromisoformat(timestamp[:10])
    return (day - timedelta(days=day.weekday())).isoformat()


# --- stories ---------------------------------------------------------------------------------


def test_report_matches_an_independent_computation_from_the_export(workdir: Path) -> None:
    report, rows = report_json(workdir), exported(workdir)
    assert_same(reported(report["scores"]), grouped(rows, lambda r: ()))
    nps = next(s["score"] for s in report["scores"] if s["metric"] == "nps")
    assert nps["n"] == sum(map(len, NPS_SCORES)) == 18
    assert round(nps["value"], 1) == 22.2  # 9 promoters, 5 detractors of 18


def test_segments_by_agent_platform_and_locale_match_the_export(workdir: Path) -> None:
    rows = exported(workdir)
    keys = {"agent": lambda r: (r["context"]["agent"],), "platform": lambda r: (r["platform"],),
            "locale": lambda r: (r["locale"],)}  # fmt: skip
    for by, key in keys.items():
        report = report_json(workdir, "--by", by)
        assert report["by"] == by
        assert_same(reported(report["segments"], with_segment=True), grouped(rows, key))


def test_weekly_trend_has_a_point_per_iso_week_starting_on_monday(workdir: Path) -> None:
    report, rows = report_json(workdir), exported(workdir)
    points = [dict(w, segment=w["segment"]) for t in report["trends"] for w in t["weeks"]]
    assert {p["segment"] for p in points} == {"2024-03-04", "2024-03-11"}
    assert_same(reported(points, with_segment=True),
                grouped(rows, lambda r: (monday_of(r["answered_at"]),)))  # fmt: skip
    by_week = report_json(workdir, "--by", "week")
    assert reported(by_week["segments"], True) == reported(points, True)


def test_response_rate_and_drop_off_count_the_surveys_sent(workdir: Path) -> None:
    report = report_json(workdir)
    response = {r["flow_id"]: r for r in report["response"]}
    assert {f: (r["sent"], r["completed"], r["expired"], r["active"])
            for f, r in response.items()} == {
        "nps": (20, 18, 1, 1), "csat": (16, 15, 1, 0), "ces": (10, 10, 0, 0)
    }  # fmt: skip
    assert response["nps"]["rate"]["value"] == pytest.approx(90.0)
    wilson = stats.binomtest(18, 20).proportion_ci(method="wilson")
    assert response["nps"]["rate"]["low"] == pytest.approx(100 * wilson.low)
    questions = {(q["flow_id"], q["question_id"]): q for q in report["questions"]}
    score = questions[("nps", "score")]
    assert (score["reached"], score["answered"], score["abandoned"], score["pending"]) == (
        20, 18, 1, 1
    )  # fmt: skip
    assert score["drop_off"]["value"] == pytest.approx(5.0)
    why = questions[("csat", "what_went_wrong")]  # 5 unhappy: 2 explain, 2 skip, 1 walks away
    assert (why["reached"], why["answered"], why["skipped"], why["abandoned"]) == (5, 2, 2, 1)
    assert why["completion"]["value"] == pytest.approx(40.0)
    assert why["drop_off"]["value"] == pytest.approx(20.0)


def test_since_and_until_select_a_week_and_compare_it_with_the_week_before(
    workdir: Path,
) -> None:
    week1 = report_json(workdir, "--since", "2024-03-11", "--until", "2024-03-17")
    rows = [r for r in exported(workdir) if r["answered_at"] >= "2024-03-11"]
    assert_same(reported(week1["scores"]), grouped(rows, lambda r: ()))
    assert week1["previous_since"].startswith("2024-03-04T00:00:00")
    week0 = report_json(workdir, "--since", "2024-03-04", "--until", "2024-03-10")
    now, before = reported(week1["scores"]), reported(week0["scores"])
    for line in week1["scores"]:
        key = (line["flow_id"], line["question_id"])
        assert line["previous"] == before[key]
        change = line["change"]
        assert change["difference"] == pytest.approx(now[key]["value"] - before[key]["value"])
        assert change["against"] == "previous period"
        assert change["low"] < change["difference"] < change["high"] or line["metric"] == "nps"
        assert change["word"] in ("up, not significant (n too small)",
                                  "down, not significant (n too small)")  # fmt: skip
    nps = next(s for s in week1["scores"] if s["metric"] == "nps")
    assert (nps["score"]["value"], nps["previous"]["value"]) == (25.0, 20.0)
    assert {r["flow_id"]: r["sent"] for r in week1["response"]} == {"nps": 10, "csat": 6,
                                                                       "ces": 3}  # fmt: skip


def test_the_table_shows_every_score_with_its_interval_and_n(workdir: Path) -> None:
    table = surveybot(workdir, "report", "--since", "2024-03-11", "--until", "2024-03-17")
    assert "Scores" in table and "95% CI" in table and "vs previous period" in table
    nps = next(line for line in table.splitlines() if " NPS " in line)
    # 4 promoters, 2 passives, 2 detractors (NPS 25, adjusted Wald -29.4 to 65.8), 5 points
    # up on the week before: not significant with 8 answers
    assert nps.split()[:13] == ["nps", "score", "NPS", "25.0", "-29.4", "to", "65.8", "8",
                                "50%", "/", "25%", "/", "25%"]  # fmt: skip
    assert nps.rstrip().endswith(
        "+5.0 pts (95% CI -63.2 to 68.8), up, not significant (n too small)"
    )
    assert "Completion and drop-off per question" in table and "Latest comments" not in table


def test_csv_carries_the_figures_of_the_json(workdir: Path) -> None:
    report = report_json(workdir, "--by", "agent")
    table = surveybot(workdir, "report", "--period", "all", "-f", "csv", "--by", "agent")
    rows = list(csv.DictReader(io.StringIO(table)))
    scores = [r for r in rows if r["section"] == "score"]
    assert len(scores) == len(report["scores"])
    for row, line in zip(scores, report["scores"], strict=True):
        assert (row["flow_id"], row["question_id"], int(row["n"])) == (
            line["flow_id"], line["question_id"], line["score"]["n"]
        )  # fmt: skip
        assert float(row["value"]) == pytest.approx(line["score"]["value"])
        assert float(row["low"]) == pytest.approx(line["score"]["low"])
    assert {r["segment"] for r in rows if r["section"] == "segment"} == {"ann", "bob", "carol",
                                                                          "dave"}  # fmt: skip
    assert {r["section"] for r in rows} >= {"week", "response", "completion", "drop_off"}


def test_comments_appear_beside_the_score_of_their_session(workdir: Path) -> None:
    report = report_json(workdir, "--comments")
    comments = [(c["text"], c["score"]) for c in report["comments"]]
    assert ("took three emails", "CES 1/7") == comments[0]  # the newest first
    assert ("rude reply", "CSAT no") in comments and ("too slow", "NPS 0/10") in comments
    assert report_json(workdir)["comments"] == []  # only when asked for
    table = surveybot(workdir, "report", "--period", "all", "--comments")
    assert "Latest comments" in table and "took three emails" in table


def test_the_html_copy_opens_offline(workdir: Path) -> None:
    page = workdir / "dashboard.html"
    surveybot(workdir, "report", "--period", "all", "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert html.count('data-testid="score-card"') == 3
    assert html.count("<svg") == 6  # 3 weekly trends, 3 distributions
    assert "22.2" in html and "n = 18" in html and "rude reply" in html
    for external in ("<script", "<link", 'src="http', "@import", "url(http"):
        assert external not in html


def test_the_report_api_serves_the_figures_of_the_cli(workdir: Path) -> None:
    cli = report_json(workdir, "--by", "platform")
    api, page = asyncio.run(fetch(workdir, "/api/v1/report?period=all&by=platform", "/?period=all"))
    assert api.status_code == 200
    assert api.json()["scores"] == cli["scores"] and api.json()["segments"] == cli["segments"]
    assert page.status_code == 200 and page.text.count('data-testid="score-card"') == 3
    filtered = asyncio.run(fetch(workdir, "/api/v1/report?period=all&flow=nps&platform=slack"))
    assert filtered[0].json()["scores"] == []
    bad = asyncio.run(fetch(workdir, "/api/v1/report?period=soon", "/?by=colour"))
    assert [r.status_code for r in bad] == [422, 422]


def test_with_an_api_token_the_report_wants_it(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEYBOT_API_TOKEN", "s3cret")
    import base64

    basic = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    answers = asyncio.run(fetch(workdir, "/?period=all", "/api/v1/report", headers={}))
    assert [r.status_code for r in answers] == [401, 401]
    assert answers[0].headers["www-authenticate"].startswith("Basic")
    ok = asyncio.run(fetch(workdir, "/?period=all", headers={"Authorization": basic}))
    assert ok[0].status_code == 200
    bearer = asyncio.run(fetch(workdir, "/api/v1/report", headers={"Authorization":
                                                                    "Bearer s3cret"}))  # fmt: skip
    assert bearer[0].status_code == 200


async def fetch(
    workdir: Path, *paths: str, headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    settings = load_settings(workdir / "config.yaml")
    async with services(settings) as svc:
        web = FastAPI()
        web.include_router(router(svc))
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://report") as client:
            return [await client.get(p, headers=headers) for p in paths]


def test_an_empty_database_says_there_is_no_data(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED_FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / "config.yaml").write_text(
        'flows_dir: flows\nstorage: {url: "sqlite:///empty.db"}\n', encoding="utf-8"
    )
    assert "no answers or surveys sent match" in surveybot(tmp_path, "report")
    assert report_json(tmp_path)["scores"] == []


def test_the_cli_and_the_dashboard_cover_the_same_last_30_days_unless_told(
    workdir: Path,
) -> None:
    """The seeded answers are from 2024: by default both say which period they looked at
    (the same 30 days) and find nothing in it; --period all finds them."""
    table = surveybot(workdir, "report")
    since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d")
    assert f"from {since}" in table and "no answers or surveys sent match" in table
    page = surveybot(workdir, "report", "--period", "all")
    assert "from the beginning" in page and "no answers" not in page
    assert json.loads(surveybot(workdir, "report", "-f", "json"))["since"].startswith(since)


def test_bad_options_are_refused_with_a_reason(workdir: Path) -> None:
    for args, reason in (
        (["--by", "colour"], "platform, agent, locale, channel or week"),
        (["--format", "xml"], "table, json or csv"),
        (["--since", "2024-03-11", "--until", "2024-03-01"], "earlier than"),
        (["--since", "last tuesday"], "ISO date/time or a duration"),
        (["--period", "a while"], "or use all"),
    ):
        result = CliRunner().invoke(app, ["report", *args, "--config",
                                          str(workdir / "config.yaml")])  # fmt: skip
        assert result.exit_code == 2 and reason in result.output, result.output


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_the_report_api_honours_its_schema_whatever_it_is_asked(workdir: Path, mode: str) -> None:
    """No query, however odd, gets a 5xx; bad filters get a 422; every answer matches the
    OpenAPI schema (the checks of tests/test_schemathesis.py)."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    from tests.web.test_schemathesis import CHECKS

    with Server(workdir / "config.yaml") as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        (operation,) = [result.ok() for result in schema.get_all_operations()]
        assert operation.label == "GET /api/v1/report"

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def call(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        call()
