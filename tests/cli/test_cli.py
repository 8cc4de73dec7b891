"""The admin's first ten minutes, through the real `surveybot` console script."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.support.console_script import surveybot


def test_init_writes_a_working_config_and_the_shipped_flows(workdir: Path) -> None:
    assert (workdir / "config.yaml").exists()
    assert sorted(p.name for p in (workdir / "flows").glob("*.yaml")) == [
        "ces.yaml", "csat.yaml", "nps.yaml"
    ]  # fmt: skip
    result = surveybot("validate", cwd=workdir)
    assert result.returncode == 0 and result.stdout.count(": ok — ") == 3
    again = surveybot("init", ".", cwd=workdir)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_piped_nps_survey_is_stored_and_exported(workdir: Path) -> None:
    result = surveybot("try", "nps", cwd=workdir, stdin="9\nGreat service\n")
    assert result.returncode == 0, result.stderr
    assert "How likely are you to recommend" in result.stdout
    export = surveybot("export", "--format", "jsonl", cwd=workdir)
    rows = [json.loads(line) for line in export.stdout.splitlines()]
    assert [(r["question_id"], r["metric"], r["value"], r["text"]) for r in rows] == [
        ("score", "nps", 9, None),
        ("promoter_reason", "text", None, "Great service"),
    ]
    assert rows[0]["answered_at"].endswith("Z") and rows[0]["triggered_by"] == "try"
    assert set(rows[0]) == {
        "session_id", "flow_id", "flow_version", "question_id", "metric", "value", "text",
        "platform", "user_id", "chat_id", "thread_id", "locale", "context", "triggered_by",
        "answered_at",
    }  # fmt: skip


def test_greek_survey_with_a_wrong_answer_then_a_skip(workdir: Path) -> None:
    result = surveybot(
        "try", "ces", "--locale", "el", "--ctx", "agent=maria", cwd=workdir,
        stdin="δέκα\n6\n/skip\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Επιλέξτε έναν αριθμό από 1 έως 7." in result.stdout
    export = surveybot("export", "--format", "csv", "--flow", "ces", cwd=workdir)
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [(r["question_id"], r["value"], r["locale"]) for r in rows] == [("effort", "6", "el")]
    assert json.loads(rows[0]["context"]) == {"agent": "maria"}


def test_input_that_ends_early_keeps_what_was_answered(workdir: Path) -> None:
    result = surveybot("try", "csat", cwd=workdir, stdin="no\n")
    assert result.returncode == 1 and "answers so far are saved" in result.stderr
    export = surveybot("export", cwd=workdir)
    assert len(export.stdout.splitlines()) == 1


def test_unknown_flow_lists_the_available_ones(workdir: Path) -> None:
    result = surveybot("try", "nope", cwd=workdir)
    assert result.returncode == 2 and "available: ces, csat, nps" in result.stderr


def test_erase_removes_a_customers_answers_and_says_how_many(workdir: Path) -> None:
    surveybot("try", "nps", cwd=workdir, stdin="3\nToo slow\n")
    user = json.loads(surveybot("export", cwd=workdir).stdout.splitlines()[0])["user_id"]
    result = surveybot("erase", "--user", f"console:{user}", cwd=workdir)
    assert result.returncode == 0 and "erased 2 answers and 1 session of" in result.stdout
    assert surveybot("export", cwd=workdir).stdout == ""
    bad = surveybot("erase", "--user", "fax:1", cwd=workdir)
    assert bad.returncode == 2


def test_secrets_in_config_yaml_are_refused(workdir: Path) -> None:
    config = workdir / "config.yaml"
    config.write_text(config.read_text() + "telegram_token: '123:abc'\n")
    result = surveybot("validate", cwd=workdir)
    assert result.returncode == 2 and "SURVEYBOT_TELEGRAM_TOKEN" in result.stderr


def test_the_repository_config_is_the_one_init_writes() -> None:
    from bot.cli.core import CONFIG_TEMPLATE

    root = Path(__file__).resolve().parents[2]
    assert (root / "config.yaml").read_text(encoding="utf-8") == CONFIG_TEMPLATE
