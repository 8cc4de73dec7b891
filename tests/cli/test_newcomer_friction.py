"""The papercuts of a newcomer's first hour, each as the admin meets it at the command line."""

from __future__ import annotations

import getpass
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.core import app
from bot.conversation.reload import apply_changes
from bot.survey.loader import FlowRegistry
from storage.migrations import SQLITE
from tests.support.console_script import surveybot

runner = CliRunner()


@pytest.fixture
def install(tmp_path: Path, flows_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TELEGRAM_TOKEN", "SLACK_BOT_TOKEN", "API_TOKEN", "SERVER__PORT"):
        monkeypatch.delenv(f"SURVEYBOT_{name}", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(
        f'flows_dir: {flows_dir}\nstorage: {{url: "sqlite:///{tmp_path / "s.db"}"}}\n',
        encoding="utf-8",
    )
    return config


def test_a_secret_nested_in_config_says_which_variable_to_set(install: Path) -> None:
    install.write_text(install.read_text() + "slack: {bot_token: xoxb-123}\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "--config", str(install)])
    assert result.exit_code == 2
    assert "secrets belong in the environment: set SURVEYBOT_SLACK_BOT_TOKEN" in result.output
    assert "Extra inputs" not in result.output


def test_a_bad_environment_override_names_the_variable_not_the_file(
    install: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEYBOT_SERVER__PORT", "abc")
    result = runner.invoke(app, ["validate", "--config", str(install)])
    assert result.exit_code == 2
    assert "SURVEYBOT_SERVER__PORT='abc' (environment): server.port" in result.output
    assert str(install) not in result.output


def test_db_migrate_says_whether_it_applied_anything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = runner.invoke(app, ["db", "migrate", "--url", url])
    latest = len(SQLITE)
    assert first.exit_code == 0
    assert f"schema at version {latest}; applied {latest} migrations (from version 0)" in (
        first.output
    )
    again = runner.invoke(app, ["db", "migrate", "--url", url])
    assert again.exit_code == 0
    assert f"schema at version {latest}; already up to date, nothing applied" in again.output


def test_unknown_flows_and_locales_fail_with_a_clear_message(workdir: Path) -> None:
    for command in (["report", "--flow", "nope"], ["export", "--flow", "nope"]):
        result = surveybot(*command, cwd=workdir)
        assert result.returncode == 1, command
        assert "unknown flow 'nope'" in result.stderr and "flows: ces, csat, nps" in result.stderr
    locale = surveybot("try", "nps", "--locale", "xx", cwd=workdir, stdin="9\n")
    assert locale.returncode == 1
    assert "flow 'nps' has no 'xx' texts; its locales: en, el, lt" in locale.stderr
    assert surveybot("try", "csat", cwd=workdir, stdin="yes\n").returncode == 0
    one = surveybot("export", cwd=workdir)
    assert one.stderr.strip() == "1 answer exported"


def test_hot_reload_logs_each_change_once(
    flows_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = FlowRegistry(flows_dir)
    assert registry.load_all() == []
    path = flows_dir / "nps.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Thank you", "Thanks"), "utf-8")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        saved = [("modified", str(path))] * 3  # an editor's save, three events
        apply_changes(registry, saved)  # type: ignore[arg-type]
        apply_changes(registry, saved)  # type: ignore[arg-type]
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["flow nps reloaded"]
    path.write_text("id: nps\nname: [broken\n", encoding="utf-8")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        apply_changes(registry, [("modified", str(path))] * 3)  # type: ignore[arg-type]
        apply_changes(registry, [("modified", str(path))])  # type: ignore[arg-type]
    assert len(caplog.records) == 1 and "flow refused" in caplog.records[0].getMessage()


def test_report_tables_show_choice_questions_and_name_figures_like_the_dashboard(
    workdir: Path,
) -> None:
    (workdir / "flows" / "channel.yaml").write_text(
        "id: channel\nname: Channel\nlocales: [en]\nquestions:\n  - id: how\n    type: choice\n"
        "    text: How did you reach us?\n    options:\n      - {id: chat, text: Live chat}\n"
        "      - {id: mail, text: Email}\n",
        encoding="utf-8",
    )
    assert surveybot("try", "channel", cwd=workdir, stdin="2\n").returncode == 0
    table = surveybot("report", cwd=workdir).stdout
    assert "Choice questions" in table
    email = next(line for line in table.splitlines() if "Email" in line)
    assert email.split()[-2:] == ["1", "100%"]
    page = (Path(__file__).parents[2] / "bot/reports/templates/dashboard.html").read_text()
    for column in ("Abandoned", "Waiting"):
        assert column in table and f">{column}</th>" in page
    erased = surveybot("erase", "--user", f"console:{getpass.getuser()}", cwd=workdir)
    assert "erased 1 answer and 1 session of" in erased.stdout
