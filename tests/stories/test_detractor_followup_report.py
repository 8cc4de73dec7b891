"""The support lead's story, continued: after Anna's NPS 3 was alerted in the Slack staff channel,
Stella said "I'll follow up" and Leo resolved it, `surveybot report` shows the team's follow-up:
1 negative answer, 100% followed up, the time it took, all resolved. Anna, the customer, never
sees any of it. Through the real python-telegram-bot and slack_sdk against the fakes (the
world of tests/stories/test_detractor_alerts.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.core import app
from bot.conversation.alerts import AlertRule
from bot.reports.followup import fmt_wait
from tests.stories.test_detractor_alerts import anna_answers_nps
from tests.support.alert_world import LEO, STAFF_CHANNEL, World, alert_world
from tests.support.slack_support import STAFF
from tests.support.telegram_harness import ANNA


@pytest.fixture
async def world(tmp_path: Path, flows_dir: Path) -> AsyncIterator[World]:
    rules = {"detractors": AlertRule(when="nps <= 6", to=f"slack:{STAFF_CHANNEL}")}
    async with alert_world(tmp_path, flows_dir, rules) as w:
        yield w


async def surveybot_report(world: World, tmp_path: Path, *args: str) -> str:
    """`surveybot report` on the same database, as an admin runs it beside the bot."""
    config = tmp_path / "report.yaml"
    config.write_text(
        f"flows_dir: {world.svc.settings.flows_dir}\nstorage: {{url: "
        f'"{world.svc.settings.storage.url}"}}\nalerts:\n  detractors: {{when: "nps <= 6", '
        f'to: "slack:{STAFF_CHANNEL}"}}\n',
        encoding="utf-8",
    )
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["report", *args, "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_the_report_shows_the_team_followed_up_the_unhappy_customer(
    world: World, tmp_path: Path
) -> None:
    await anna_answers_nps(world, "3", "Nobody answered my emails for a week")
    await world.slack_alert_shows(lambda t: "Nobody answered" in t, "the comment")
    await world.press_in_slack(STAFF, "I'll follow up")
    await world.slack_alert_shows(lambda t: "is following up" in t, "the owner")
    await world.press_in_slack(LEO, "Resolved")
    await world.slack_alert_shows(lambda t: "Resolved by" in t, "the resolution")

    [followup] = await world.followups()
    assert followup.owned_at is not None and followup.owned_at > followup.created_at
    waited = fmt_wait((followup.owned_at - followup.created_at).total_seconds())
    table = await surveybot_report(world, tmp_path, "--flow", "nps")
    everyone = next(line for line in table.splitlines() if line.split()[:1] == ["everyone"])
    assert " ".join(everyone.split()) == (
        f"everyone 1 100.0% (95% CI 20.7–100.0, n=1) {waited} (n=1) "
        "100.0% (95% CI 20.7–100.0, n=1) 0"
    )
    assert " ".join(
        next(line for line in table.splitlines() if line.split()[:1] == ["Maria"]).split()
    ).startswith("Maria 1 100.0%")
    assert "Unresolved: none." in table

    anna_saw = " ".join(m["text"] for m in world.telegram.chat_messages(ANNA, bot_only=True))
    for staff_only in ("following up", "Resolved", "Unhappy", "negative", STAFF, LEO, waited):
        assert staff_only not in anna_saw
