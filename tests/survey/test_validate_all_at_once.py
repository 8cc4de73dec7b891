"""`surveybot validate` reports every problem of a file in one run, in the admin's words: a
broken question or top-level key does not hide the graph problems of the rest. And what the
admin wrote renders cleanly when a placeholder has no value."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.core import app
from bot.survey.flow import render
from bot.survey.loader import load_flow

# 5 structural problems (locales, a min above max, one option, a bad id, an unknown type) and
# 6 more that only the graph and file checks find
MESSY = """\
id: feedback
name: Feedback
locales: [en, EN]
questions:
  - id: score
    type: nps
    text: {en: "Score?"}
  - id: rate
    type: rating
    min: 5
    max: 3
    text: "Rate?"
  - id: pick
    type: choice
    text: "Pick"
    options:
      - {id: a, text: "A"}
  - id: why
    type: text
    when: {score: {lte: 11}}
    text: "Why?"
  - id: Bad-Id
    type: yes_no
    text: "Yes?"
  - id: later
    type: text
    when: {future: {eq: 1}}
    text: "Later"
  - id: future
    type: colour
    text: "x"
  - id: why
    type: text
    text: "Again"
thanks: "Thanks {name"
strings: {nope: "x"}
"""


def test_one_run_reports_structure_graph_and_file_problems_together(tmp_path: Path) -> None:
    path = tmp_path / "other_name.yaml"
    path.write_text(MESSY, encoding="utf-8")
    flow, errors = load_flow(path)
    assert flow is None
    shown = [f"{e.line}:{e.col} {e.question_id or '-'} {e.message}" for e in errors]
    *rest, strings = shown
    assert strings.startswith("36:11 - unknown interface string 'nope'; known: yes, no, skip")
    assert rest == [
        "1:1 - id 'feedback' must equal the file name 'other_name'",
        "3:15 - locales.1: 'EN' is not a locale: use 2 or 3 lowercase letters (en, el, lt)",
        "11:5 rate max: max (3) must be greater than min (5)",
        "16:5 pick options: needs at least 2 entries, has 1",
        "20:12 why when: 11 is outside 'score''s scale 0..10",
        "22:5 Bad-Id id: 'Bad-Id' is not a usable id: start with a lowercase letter and use "
        "only a-z, 0-9 and _ (at most 32 characters)",
        "27:12 later when: refers to a later question 'future'; conditions may only use "
        "earlier answers",
        "30:5 future type: unknown question type 'colour'; expected one of yes_no, rating, "
        "nps, ces, choice, text",
        "32:5 why duplicate question id 'why' (first used by question 4)",
        "35:1 - bad placeholder: expected '}' before end of string (write {{ and }} for "
        "literal braces)",
    ]
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and result.output.count(str(path)) == len(errors)


def test_yaml_syntax_errors_come_with_a_hint_in_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "hint.yaml"
    path.write_text(
        "id: hint\nname: Hint\nlocales: [en]\nquestions:\n  - id: q\n    type: text\n"
        "    text: Note: please be brief\n",
        encoding="utf-8",
    )
    _, [error] = load_flow(path)
    assert (error.line, error.col) == (7, 15)
    assert error.message.startswith("YAML syntax: mapping values are not allowed here — ")
    assert "space" in error.message and "quotes" in error.message


@pytest.mark.parametrize(
    ("template", "shown"),
    [
        ("Thanks {customer_name}!", "Thanks!"),
        ("Hello {customer_name}, how did {agent} do?", "Hello, how did do?"),
        ("Ticket {ticket_id} is closed.", "Ticket is closed."),
        ("Πώς σας εξυπηρέτησε ο/η {agent};", "Πώς σας εξυπηρέτησε ο/η;"),
        ("Thanks {customer_name}!", "Thanks Maria!"),
    ],
)
def test_a_placeholder_without_a_value_leaves_no_dangling_space(template: str, shown: str) -> None:
    context = {"customer_name": "Maria"} if "Maria" in shown else {}
    assert render(template, context) == shown
