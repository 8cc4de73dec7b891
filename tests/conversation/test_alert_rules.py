"""Alert rules as an admin writes them under `alerts:` in config.yaml: which answers each one
fires on, and every mistake refused with a message naming its key (by `surveybot validate`
and at start)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from bot.chat import Address
from bot.cli.core import app
from bot.conversation.alerts import ALERT, ALERT_UPDATE, AlertRule, Alerts, check_alerts
from bot.survey.engine import Reply as R
from bot.survey.engine import advance, begin
from bot.survey.loader import FlowRegistry
from storage.base import SessionRecord

runner = CliRunner()
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def rule(**fields: object) -> AlertRule:
    return AlertRule.model_validate({"when": "nps <= 6", "to": "slack:C0STAFF"} | fields)


def matches(registry: FlowRegistry, when: str, flow_id: str, value: int) -> bool:
    flow = registry.get(flow_id)
    assert flow is not None
    return Alerts({"r": rule(when=when)}).rule_for(flow, flow.questions[0], value) is not None


@pytest.mark.parametrize(
    ("when", "flow", "unhappy", "fine"),
    [("nps <= 6", "nps", 6, 7), ("NPS<6", "nps", 5, 6), ("csat = no", "csat", 0, 1),
     ("ces <= 3", "ces", 3, 4), ("ces == 1", "ces", 1, 2)],
)  # fmt: skip
def test_a_rule_fires_on_the_scores_it_names_and_not_on_others(
    registry: FlowRegistry, when: str, flow: str, unhappy: int, fine: int
) -> None:
    assert matches(registry, when, flow, unhappy)
    assert not matches(registry, when, flow, fine)


def test_a_rule_for_other_flows_or_another_question_stays_quiet(registry: FlowRegistry) -> None:
    nps = registry.get("nps")
    assert nps is not None
    score = nps.questions[0]
    assert Alerts({"r": rule(flows=["csat"])}).rule_for(nps, score, 2) is None
    assert Alerts({"r": rule(question="other")}).rule_for(nps, score, 2) is None
    assert Alerts({"r": rule(flows=["nps"], question="score")}).rule_for(nps, score, 2)


@pytest.mark.parametrize(
    ("fields", "named"),
    [({"when": "nps is bad"}, "cannot read 'nps is bad'"),
     ({"when": "nps <= no"}, "only csat = yes / csat = no"),
     ({"to": "teams:staff"}, "unknown platform 'teams'"),
     ({"to": "slack:#support"}, "not a Slack channel ID"),
     ({"to": "telegram:12345"}, "not a Telegram group's chat ID"),
     ({"to": "slack"}, "slack:<channel id>"),
     ({"topic": 7}, "only a Telegram group has forum topics"),
     ({"locale": "fr"}, "locale"),
     ({"severity": "high"}, "severity")],
)  # fmt: skip
def test_a_badly_written_rule_is_refused_with_what_to_write(
    fields: dict[str, object], named: str
) -> None:
    with pytest.raises(ValidationError) as error:
        rule(**fields)
    assert named in str(error.value)


def test_rules_that_do_not_fit_the_flows_or_platforms_are_each_named(
    registry: FlowRegistry,
) -> None:
    flows = {fid: f for fid in registry.ids() if (f := registry.get(fid))}
    rules = {
        "detractors": rule(),
        "typo": rule(flows=["npss"]),
        "nowhere": rule(question="why"),
        "scale": rule(when="nps <= 11"),
        "yes_no": rule(when="csat <= 2", flows=["csat"]),
        "words": rule(when="csat = no", flows=["nps"]),
        "tg": rule(to="telegram:-1001234567890", topic=7),
    }
    problems = check_alerts(rules, flows, ["slack"])
    assert problems == [
        "alerts.typo.flows: unknown flow 'npss' (flows: ces, csat, nps)",
        "alerts.nowhere.question: no question 'why' in ces, csat, nps",
        "alerts.scale.when: 'nps <= 11' for nps.score: 11 is outside the question's scale 0–10",
        "alerts.yes_no.when: 'csat <= 2' for csat.satisfied: a yes/no question: write csat = no",
        "alerts.words.when: no csat question to watch in nps",
        "alerts.tg.to: telegram is not connected: set SURVEYBOT_TELEGRAM_TOKEN",
    ]


def test_an_nps_3_owes_one_alert_and_the_comment_after_it_owes_its_update(
    registry: FlowRegistry,
) -> None:
    flow = registry.get("nps")
    assert flow is not None
    alerts = Alerts({"team": rule(locale="el"), "second": rule(to="slack:C0OTHER")})
    state = begin(flow, "en", {"ticket_id": "T-7", "agent": "Maria"}).state
    session = SessionRecord(
        id="s-anna-0001", flow_id="nps", flow_version=flow.version, platform="telegram",
        user_id="5001", user_name="Anna", locale="en", context=state.context, state=state,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    score = advance(flow, state, R(kind="tap", question_index=0, value="3"))
    [alert] = alerts.owed(flow, session, score, NOW)  # the first rule that matches, only
    assert (alert.kind, alert.lane, alert.address) == (
        ALERT, "bulk", Address(platform="slack", user_id="C0STAFF", chat_id="C0STAFF")
    )  # fmt: skip
    assert '"score": 3' in alert.body and '"scale_max": 10' in alert.body
    assert '"ticket_id": "T-7"' in alert.body and '"agent": "Maria"' in alert.body
    comment = advance(flow, score.state, R(kind="text", value="Nobody called back"))
    [update] = alerts.owed(flow, session.model_copy(update={"state": score.state}), comment, NOW)
    assert update.kind == ALERT_UPDATE and '"comment": "Nobody called back"' in update.body
    happy = advance(flow, state, R(kind="tap", question_index=0, value="9"))
    assert alerts.owed(flow, session, happy, NOW) == []
    thanks = advance(flow, happy.state, R(kind="text", value="great"))
    assert alerts.owed(flow, session.model_copy(update={"state": happy.state}), thanks, NOW) == []


@pytest.fixture
def install(tmp_path: Path, flows_dir: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"flows_dir: {flows_dir}\n"
        f'storage: {{url: "sqlite:///{tmp_path / "surveys.db"}"}}\n'
        "alerts:\n"
        "  detractors: {when: nps <= 6, to: 'slack:C0STAFF', flows: [nps]}\n",
        encoding="utf-8",
    )
    return config


def test_validate_names_an_alert_that_cannot_go_anywhere(
    install: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["validate", "-c", str(install)])
    assert result.exit_code == 1
    assert "alerts.detractors.to: slack is not connected: set SURVEYBOT_SLACK_BOT_TOKEN" in (
        result.output
    )
    monkeypatch.setenv("SURVEYBOT_SLACK_BOT_TOKEN", "xoxb-test")
    assert runner.invoke(app, ["validate", "-c", str(install)]).exit_code == 0


def test_validate_and_start_refuse_a_badly_written_alert_naming_its_key(install: Path) -> None:
    text = install.read_text(encoding="utf-8").replace("slack:C0STAFF", "slack:#support")
    install.write_text(text, encoding="utf-8")
    for command in (["validate", "-c", str(install)], ["run", "-c", str(install)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "alerts.detractors.to" in result.output and "Slack channel ID" in result.output


def test_start_refuses_an_alert_rule_for_an_unknown_flow(install: Path) -> None:
    text = install.read_text(encoding="utf-8").replace("flows: [nps]", "flows: [npss]")
    install.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["run", "-c", str(install), "--log-file", "-"])
    assert result.exit_code == 2, result.output
    assert "alerts.detractors.flows: unknown flow 'npss'" in result.output
