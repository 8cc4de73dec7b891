"""An admin opens the dashboard in a real browser (Debian's headless Chromium driven by
Playwright) on a server started on loopback over a seeded database: the score cards show the
seeded figures with their intervals and n, the charts render, the filters work, and a
screenshot is kept under the test's tmp dir (a CI artifact)."""

from __future__ import annotations

import asyncio
import math
import shutil
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_FLOWS
from tests.support.report_seed import CES_ANSWERS, CSAT_ANSWERS, NPS_SCORES, Visit, seed, two_weeks
from tests.support.report_server import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


def last_30_days() -> tuple[datetime, list[Visit]]:
    """Two weeks of answers ending last week, and before the 30 days, one week of the same
    pattern (the previous period the cards compare with)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday() + 14)
    earlier = monday - timedelta(days=35)
    previous = [v for v in two_weeks(earlier) if v.at < earlier + timedelta(days=7)]
    return monday, [*previous, *two_weeks(monday)]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    shutil.copytree(SHIPPED_FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("*.py"))
    config = tmp_path / "config.yaml"
    config.write_text('flows_dir: flows\nstorage: {url: "sqlite:///surveys.db"}\n')
    _, visits = last_30_days()
    asyncio.run(seed(f"sqlite:///{tmp_path / 'surveys.db'}", tmp_path / "flows", visits))
    with Server(config) as server:
        yield server.url


def seeded_figures() -> dict[str, tuple[str, str]]:
    """What the cards must show for the last 30 days, from the seed itself."""
    nps = [s for week in NPS_SCORES for s in week]
    promoters, detractors = sum(s >= 9 for s in nps), sum(s <= 6 for s in nps)
    csat = [a for week in CSAT_ANSWERS for a in week] + ["no"]  # the one who walked away
    ces = [v for week in CES_ANSWERS for v in week]
    return {
        "nps": (f"{100 * (promoters - detractors) / len(nps):.1f}", f"n = {len(nps)}"),
        "csat": (f"{100 * csat.count('yes') / len(csat):.1f}%", f"n = {len(csat)}"),
        "ces": (f"{statistics.fmean(ces):.2f}", f"n = {len(ces)}"),
    }


def test_the_dashboard_shows_the_seeded_scores_and_draws_its_charts(
    dashboard: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    figures = seeded_figures()
    assert figures["nps"] == ("22.2", "n = 18")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard + "/")
            for metric, (value, n) in figures.items():
                card = page.locator(f'[data-testid="score-card"][data-metric="{metric}"]')
                assert card.locator('[data-testid="score-value"]').inner_text() == value
                assert card.locator('[data-testid="score-n"]').inner_text() == n
                assert card.locator('[data-testid="score-ci"]').inner_text().startswith("95% CI")
            nps_change = page.locator('[data-metric="nps"] [data-testid="score-change"]')
            assert nps_change.inner_text().startswith("▲ +2.2 pts vs previous period (20.0")
            charts = page.locator("figure svg")
            assert charts.count() == 6  # a weekly trend and a distribution per scored question
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100
                assert charts.nth(i).locator("path").count() > 10  # axes, ticks, bars, lines
            assert "rude reply" in page.locator('[data-testid="comments"]').inner_text()
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            page.select_option('select[name="platform"]', "slack")
            page.click('button[type="submit"]')
            page.wait_for_url("**platform=slack**")
            metrics = page.locator('[data-testid="score-card"]').evaluate_all(
                "cards => cards.map(c => c.dataset.metric)"
            )
            assert sorted(metrics) == ["ces", "csat"]  # NPS is asked on Telegram only
            ces_on_slack = [v for week in CES_ANSWERS for v in week[1::2]]
            value = page.locator('[data-metric="ces"] [data-testid="score-value"]').inner_text()
            assert math.isclose(float(value), statistics.fmean(ces_on_slack), abs_tol=0.005)
            page.screenshot(path=str(tmp_path / "dashboard-slack.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
