"""A support lead reads how the team followed up the month's detractor alerts
(tests/support/followup_seed.py) in `surveybot report` — as a table, JSON and CSV — and on the
dashboard: per agent, the negative answers, the share followed up and resolved with n and 95%
intervals, the median time to the first follow-up, and the unresolved ones oldest first. With
nothing alerted the section is one line, never a row of zeros."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from bot.app import services
from bot.cli.core import app
from bot.settings import load_settings
from bot.web.dashboard import router
from storage import open_storage
from tests.conftest import SHIPPED_FLOWS
from tests.support.followup_seed import a_month_of_alerts

JUNE = ("--flow", "nps", "--platform", "telegram", "--since", "2024-06-01", "--until",
        "2024-06-30")  # fmt: skip
JUNE_QUERY = "flow=nps&platform=telegram&since=2024-06-01&until=2024-07-01"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("SURVEYBOT_") and "TEST" not in k]:
        monkeypatch.delenv(name)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(SHIPPED_FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / "config.yaml").write_text(
        'flows_dir: flows\nstorage: {url: "sqlite:///surveys.db"}\n', encoding="utf-8"
    )
    return tmp_path


@pytest.fixture
def month(workdir: Path) -> Path:
    async def seed() -> None:
        storage = open_storage(f"sqlite:///{workdir / 'surveys.db'}")
        await storage.open()
        try:
            await a_month_of_alerts(storage)
        finally:
            await storage.close()

    asyncio.run(seed())
    return workdir


def surveybot(workdir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--config", str(workdir / "config.yaml")])
    assert result.exit_code == 0, result.output
    return result.stdout


def line_of(table: str, first: str) -> list[str]:
    return next(line for line in table.splitlines() if line.split()[:1] == [first]).split()


def test_the_table_shows_the_follow_up_per_agent_and_the_unresolved_ones(month: Path) -> None:
    table = surveybot(month, "report", *JUNE)
    assert "Follow-up of negative answers (alerted in the period)" in table
    # 7 negatives; 5 followed up (Wilson 35.9–91.8), median of 30, 60, 90, 180, 600 s;
    # 3 resolved (15.8–75.0); 4 unresolved
    assert " ".join(line_of(table, "everyone")) == (
        "everyone 7 71.4% (95% CI 35.9–91.8, n=7) 1 min 30 s (n=5) 42.9% (95% CI 15.8–75.0, n=7) 4"
    )
    assert " ".join(line_of(table, "ana")[:6]) == "ana 2 100.0% (95% CI 34.2–100.0,"
    assert "3 min 00 s (n=3)" in " ".join(line_of(table, "nick"))
    assert "— (none followed up)" in " ".join(line_of(table, "(none)"))
    unresolved = table[table.index("Unresolved, oldest first") :]
    rows = [line.split() for line in unresolved.splitlines() if line.strip()[:5] == "2024-"]
    # raised, age (days and hours since), flow, score, ..., owner
    assert [(r[0], " ".join(r[7:9]), r[-1]) for r in rows] == [
        ("2024-06-04", "NPS 0/10", "slack:U0ANN"),
        ("2024-06-06", "NPS 6/10", "slack:U0ANN"),
        ("2024-06-07", "NPS 5/10", "yet"),  # nobody yet
        ("2024-06-08", "NPS 2/10", "yet"),
    ]
    assert "T-2" in unresolved and "T-4" in unresolved and "nobody yet" in unresolved


def test_json_and_csv_carry_the_same_figures(month: Path) -> None:
    data: dict[str, Any] = json.loads(surveybot(month, "report", "-f", "json", *JUNE))
    total = data["followup"]["total"]
    assert (total["negatives"], total["followed_up"]["count"], total["resolved"]["count"],
            total["median_wait"]) == (7, 5, 3, 90.0)  # fmt: skip
    assert [o["ticket"] for o in data["followup"]["open"]] == ["T-2", None, None, "T-4"]
    rows = list(csv.DictReader(io.StringIO(surveybot(month, "report", "-f", "csv", *JUNE))))
    everyone = {r["metric"]: r for r in rows if r["section"] == "followup" and not r["segment"]}
    assert everyone["negatives"]["count"] == "7"
    assert float(everyone["followed_up"]["value"]) == pytest.approx(500 / 7)
    assert float(everyone["followed_up"]["low"]) == pytest.approx(total["followed_up"]["low"])
    assert (everyone["median_wait_seconds"]["value"], everyone["median_wait_seconds"]["n"]) == (
        "90.0",
        "5",
    )
    opened = [r for r in rows if r["section"] == "followup_open"]
    assert [(r["score"], r["segment"], r["ticket"], r["owner"]) for r in opened] == [
        ("NPS 0/10", "nick", "T-2", "slack:U0ANN"), ("NPS 6/10", "nick", "", "slack:U0ANN"),
        ("NPS 5/10", "", "", ""), ("NPS 2/10", "nick", "T-4", "")]  # fmt: skip


def test_the_dashboard_shows_the_follow_up_section(month: Path) -> None:
    page, api = asyncio.run(fetch(month, f"/?{JUNE_QUERY}", f"/api/v1/report?{JUNE_QUERY}"))
    assert page.status_code == 200 and api.status_code == 200
    html = page.text
    assert html.count('data-testid="followup-row"') == 4  # everyone, ana, nick, (none)
    assert "71.4% (5 of 7)" in html and "1 min 30 s (n=5)" in html and "42.9% (3 of 7)" in html
    assert "35.9–91.8" in html and "— (none followed up)" in html
    assert html.count('data-testid="followup-open-row"') == 4
    assert "Customer n2 (u-n2) · telegram" in html and "nobody yet" in html
    assert api.json()["followup"]["total"]["negatives"] == 7


def test_with_nothing_alerted_the_section_is_one_line(workdir: Path) -> None:
    """No alerts configured: the section says so; configured but nothing alerted in the
    period: it says that. Never a row of zeros."""
    not_configured = ("Follow-up of negative answers: No detractor alerts are configured "
                      "(alerts: in config.yaml), so there is no follow-up to measure.")  # fmt: skip
    rows = csv.DictReader(io.StringIO(surveybot(workdir, "report", "-f", "csv", *JUNE)))
    assert [r["text"] for r in rows] == [not_configured]
    (page,) = asyncio.run(fetch(workdir, f"/?{JUNE_QUERY}"))
    assert "No detractor alerts are configured" in page.text
    assert 'data-testid="followup-table"' not in page.text

    config = workdir / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + 'alerts:\n  detractors: {when: '
                      '"nps <= 6", to: "slack:C0STAFF"}\n', encoding="utf-8")  # fmt: skip
    data = json.loads(surveybot(workdir, "report", "-f", "json", *JUNE))
    assert data["followup"]["alerts"] is True and data["followup"]["total"] is None
    (page,) = asyncio.run(fetch(workdir, f"/?{JUNE_QUERY}"))
    empty = page.text.split('data-testid="followup-empty">')[1].split("<")[0]
    assert empty == "No negative answer was alerted in this period."
    assert "0.0%" not in page.text


async def fetch(workdir: Path, *paths: str) -> list[httpx.Response]:
    settings = load_settings(workdir / "config.yaml")
    async with services(settings) as svc:
        web = FastAPI()
        web.include_router(router(svc))
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://report") as client:
            return [await client.get(p) for p in paths]
