"""A support lead opens the dashboard in a real browser (Debian's headless Chromium driven by
Playwright) on a server started on loopback over a seeded database: the score cards show the
seeded figures under the flows' names, with their intervals, n, NPS group shares and the plain
word on what changed; the charts render (an interval band even for a single week), choice
answers carry their labels, the comment themes are there, the filters work, and `/docs` shows
the API with no request leaving the machine. Screenshots are kept under the test's tmp dir (a
CI artifact)."""

from __future__ import annotations

import asyncio
import math
import shutil
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import open_storage
from tests.conftest import SHIPPED_FLOWS
from tests.reports.themes_seed import complaints_and_praise
from tests.support.followup_seed import alert_detractors
from tests.support.report_seed import CES_ANSWERS, CSAT_ANSWERS, NPS_SCORES, Visit, seed, two_weeks
from tests.support.report_server import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


SUPPORT_FLOW = """
id: support
name: Support follow-up
locales: [en, el, lt]
questions:
  - id: recommend
    type: nps
    text: {en: "Would you recommend us?", el: "Θα μας προτείνατε;", lt: "Ar rekomenduotumėte?"}
  - id: channel
    type: choice
    text: {en: "How did you reach us?", el: "Πώς επικοινωνήσατε;", lt: "Kaip susisiekėte?"}
    options:
      - {id: chat, text: {en: "Live chat", el: "Ζωντανή συνομιλία", lt: "Pokalbis"}}
      - {id: email, text: {en: "E-mail", el: "Ηλεκτρονικό ταχυδρομείο", lt: "El. paštas"}}
  - id: why
    type: text
    text: {en: "Why?", el: "Γιατί;", lt: "Kodėl?"}
"""


def last_30_days() -> tuple[datetime, list[Visit]]:
    """Two weeks of answers ending last week, and before the 30 days, one week of the same
    pattern (the previous period the cards compare with); and in the last of the two weeks,
    96 customers of the support flow who complain about waiting or praise kindness, all by
    live chat (one week: a trend of one point)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday() + 14)
    earlier = monday - timedelta(days=35)
    previous = [v for v in two_weeks(earlier) if v.at < earlier + timedelta(days=7)]
    support = complaints_and_praise(monday + timedelta(days=7), "support", ("1",))
    return monday, sorted([*previous, *two_weeks(monday), *support], key=lambda v: v.at)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    shutil.copytree(SHIPPED_FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / "flows" / "support.yaml").write_text(SUPPORT_FLOW, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text('flows_dir: flows\nstorage: {url: "sqlite:///surveys.db"}\n')
    monday, visits = last_30_days()
    asyncio.run(seed(f"sqlite:///{tmp_path / 'surveys.db'}", tmp_path / "flows", visits))
    asyncio.run(alerts(f"sqlite:///{tmp_path / 'surveys.db'}", monday))
    with Server(config) as server:
        yield server.url


async def alerts(url: str, monday: datetime) -> None:
    """The 5 NPS detractors of the two weeks were alerted; staff followed up the first three
    after 2, 4 and 6 minutes (median 4 min) and resolved the first."""
    storage = open_storage(url)
    await storage.open()
    try:
        waits = [timedelta(minutes=m) for m in (2, 4, 6)]
        assert len(await alert_detractors(storage, monday, waits, resolved=1)) == 5
    finally:
        await storage.close()


def seeded_figures() -> dict[str, tuple[str, str]]:
    """What the cards of the shipped flows must show for the last 30 days, from the seed."""
    nps = [s for week in NPS_SCORES for s in week]
    promoters, detractors = sum(s >= 9 for s in nps), sum(s <= 6 for s in nps)
    csat = [a for week in CSAT_ANSWERS for a in week] + ["no"]  # the one who walked away
    ces = [v for week in CES_ANSWERS for v in week]
    return {
        "nps": (f"{100 * (promoters - detractors) / len(nps):.1f}", f"n = {len(nps)}"),
        "csat": (f"{100 * csat.count('yes') / len(csat):.1f}%", f"n = {len(csat)}"),
        "ces": (f"{statistics.fmean(ces):.2f}", f"n = {len(ces)}"),
    }


def adjusted_wald(scores: list[int]) -> str:
    """The NPS interval (Rocks 2016), computed here from the answers themselves."""
    n = len(scores) + 3
    p = (sum(s >= 9 for s in scores) + 0.75) / n
    d = (sum(s <= 6 for s in scores) + 0.75) / n
    half = 1.959964 * math.sqrt((p + d - (p - d) ** 2) / n)
    return f"95% CI {100 * (p - d - half):.1f} to {100 * (p - d + half):.1f}"


def test_the_dashboard_shows_the_seeded_scores_and_draws_its_charts(
    dashboard: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    figures = seeded_figures()
    assert figures["nps"] == ("22.2", "n = 18")
    nps_scores = [s for week in NPS_SCORES for s in week]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard + "/")
            for metric, (value, n) in figures.items():
                card = page.locator(f'[data-testid="score-card"][data-flow="{metric}"]')
                assert card.locator('[data-testid="score-value"]').inner_text() == value
                assert card.locator('[data-testid="score-n"]').inner_text() == n
                assert card.locator('[data-testid="score-ci"]').inner_text().startswith("95% CI")
            nps = page.locator('[data-testid="score-card"][data-flow="nps"]')
            title = nps.locator('[data-testid="score-title"]').text_content()
            assert title == "NPS · Net Promoter Score / score"  # the flow's name, not its id
            assert nps.locator('[data-testid="score-ci"]').inner_text() == adjusted_wald(nps_scores)
            # 9 promoters, 4 passives, 5 detractors of 18
            shares = nps.locator('[data-testid="nps-shares"]').inner_text()
            assert shares == "Promoters 50% · Passives 22% · Detractors 28%"
            change = nps.locator('[data-testid="score-change"]').inner_text()
            assert change == "▲ +2.2 pts vs previous period (20.0, n=10)"  # week 0 of the seed
            words = nps.locator('[data-testid="score-significance"]').inner_text()
            assert words.startswith("up, not significant (n too small) · 95% CI ")
            assert "more answers would show a change this size" in words

            charts = page.locator("figure svg")
            # a weekly trend and a distribution per scored question, and the choice's answers
            assert charts.count() == 9
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100
                assert charts.nth(i).locator("path").count() > 10  # axes, ticks, bars, lines
            one_week = page.locator('[data-testid="trend-chart"]', has_text="Support follow-up")
            bands = one_week.locator('[style*="#bfdbfe"]')  # the 95% band's colour
            tallest = max((bands.nth(i).bounding_box() or {"height": 0})["height"]
                          for i in range(bands.count()))  # fmt: skip
            assert tallest > 20  # drawn for the single week (the legend's swatch is ~7 px)
            choice = page.locator('[data-testid="distribution-chart"]', has_text="channel")
            assert choice.locator("svg").get_attribute("aria-label") == (
                "Answers to support/channel (n=96)"
            )
            answers = choice.locator('[data-testid="choice-answers"]').inner_text()
            assert answers.split("\n") == ["Live chat: 96 (100%)", "E-mail: 0 (0%)"]

            negative = page.locator('[data-testid="themes-negative"][data-flow="support"]')
            positive = page.locator('[data-testid="themes-positive"][data-flow="support"]')
            for word in ("waited", "slow", "λεπτά", "laukiau"):
                assert word in negative.inner_text() and word not in positive.inner_text()
            for word in ("friendly", "helpful", "ευγενικός", "malonus"):
                assert word in positive.inner_text() and word not in negative.inner_text()
            first = negative.locator('[data-testid="theme"]').first.inner_text()
            assert "comments (other side 0), z = " in first
            everyone = page.locator('[data-testid="followup-row"][data-agent=""]')
            cells = everyone.locator("td").all_inner_texts()
            # 5 negatives; 3 followed up (Wilson 23.1–88.2); median 4 min; 1 resolved; 4 open
            assert cells == ["everyone", "5", "60.0% (3 of 5)", "23.1–88.2", "4 min 00 s (n=3)",
                             "20.0% (1 of 5)", "3.6–62.4", "4"]  # fmt: skip
            agents = page.locator('[data-testid="followup-row"]').evaluate_all(
                "rows => rows.map(r => r.dataset.agent)"
            )
            assert agents == ["", "ann", "bob"]
            unresolved = page.locator('[data-testid="followup-open-row"]')
            assert unresolved.count() == 4
            assert unresolved.first.locator("td").nth(3).inner_text() == "NPS 3/10"
            assert unresolved.last.locator("td").last.inner_text() == "nobody yet"
            latest = page.locator('[data-testid="comments"]').inner_text()
            assert "· Support follow-up · telegram · agent" in latest  # the newest are theirs
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


def test_the_api_docs_render_with_no_internet(dashboard: str, tmp_path: Path) -> None:
    """Every request the page makes stays on the server; any other is refused (and noted),
    as it would fail on a machine with no internet. Swagger UI still lists the operations."""
    from playwright.sync_api import Route, sync_playwright

    outside: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(dashboard):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", only_local)
            page.goto(dashboard + "/docs")
            operation = page.locator(".opblock-summary-path", has_text="/api/v1/report")
            operation.first.wait_for(timeout=20_000)
            assert page.locator(".info .title").inner_text().startswith("surveybot")
            operation.first.click()
            page.locator(".opblock-body .parameters").first.wait_for(timeout=10_000)
            assert "themes" in page.locator(".opblock-body").first.inner_text()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()
    assert outside == []
