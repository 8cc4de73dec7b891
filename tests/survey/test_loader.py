"""Admins write YAML; mistakes come back as path:line:col with the flow and question id."""

from __future__ import annotations

import textwrap
from pathlib import Path

from typer.testing import CliRunner

from bot.cli.core import app
from bot.survey.loader import FlowRegistry, load_flow
from tests.conftest import SHIPPED_FLOWS

BROKEN = """\
id: broken
name: Broken on purpose
locales: [en, el]
questions:
  - id: score
    type: nps
    text: {en: "How likely?", el: "Πόσο πιθανό;"}
    when: {later: {gte: 1}}
  - id: score
    type: yes_no
    text: {en: "Happy?"}
  - id: mood
    type: smiley
    text: "How do you feel?"
  - id: later
    type: yes_no
    text: {en: "Again?", el: "Ξανά;"}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_flows_are_valid_in_three_languages() -> None:
    for path in sorted(SHIPPED_FLOWS.glob("*.yaml")):
        flow, errors = load_flow(path)
        assert errors == [], errors
        assert flow is not None and flow.locales == ["en", "el", "lt"]


def test_every_mistake_is_reported_once_with_its_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", BROKEN)
    flow, errors = load_flow(path)
    assert flow is None
    rendered = [str(e) for e in errors]
    assert rendered == [
        f"{path}:8:12: [broken/score] when: refers to a later question 'later'; "
        "conditions may only use earlier answers",
        f"{path}:9:5: [broken/score] duplicate question id 'score' (first used by question 1)",
        f"{path}:11:5: [broken/score] missing 'el' text (the flow declares locales en, el)",
        f"{path}:13:5: [broken/mood] type: unknown question type 'smiley'; expected one of "
        "yes_no, rating, nps, ces, choice, text",
    ]


def test_validate_command_lists_errors_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", BROKEN)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert len(lines) == 4 and all(":" in line for line in lines)


def test_validate_command_summarises_good_flows(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(SHIPPED_FLOWS)])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok — ") == 3


def test_yaml_syntax_error_points_at_the_spot(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "id: x\nname: [unclosed\nquestions: []\n")
    _, errors = load_flow(path)
    assert len(errors) == 1 and errors[0].line == 3 and "YAML syntax" in errors[0].message


def test_unknown_keys_values_and_conditions_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "odd.yaml",
        """\
        id: odd
        name: Odd
        locales: [en]
        colour: blue
        questions:
          - id: pick
            type: choice
            text: Pick one
            options: [{id: tea, text: Tea}, {id: coffee, text: Coffee}]
          - id: why
            type: text
            text: Why?
            when: {pick: {eq: water}}
          - id: rate
            type: rating
            min: 1
            max: 5
            text: Rate
            when: {pick: {gte: 2}}
          - id: more
            type: text
            text: More?
            when: {rate: {gt: 9}}
        thanks: "Thanks {customer_name"
        """,
    )
    _, errors = load_flow(path)
    messages = [e.message for e in errors]
    assert any("unknown key 'colour'" in m for m in messages)
    assert any("'water' is not an option of 'pick'" in m for m in messages)
    assert any("'pick' is a choice; use eq/ne/in" in m for m in messages)
    assert any("9 is outside 'rate''s scale 1..5" in m for m in messages)
    assert any("bad placeholder" in m for m in messages)


def test_file_name_must_match_id(tmp_path: Path) -> None:
    text = (SHIPPED_FLOWS / "csat.yaml").read_text(encoding="utf-8")
    path = write(tmp_path, "other.yaml", text)
    _, errors = load_flow(path)
    assert [e.message for e in errors] == ["id 'csat' must equal the file name 'other'"]


def test_registry_keeps_serving_the_old_version_when_an_edit_is_broken(flows_dir: Path) -> None:
    registry = FlowRegistry(flows_dir)
    assert registry.load_all() == []
    before = registry.get("csat")
    assert before is not None
    path = flows_dir / "csat.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\nbogus: [\n", encoding="utf-8")
    errors = registry.reload(path)
    assert errors and str(path.resolve()) in str(errors[0])
    assert registry.get("csat") == before
    path.unlink()
    registry.reload(path)
    assert registry.get("csat") is None
