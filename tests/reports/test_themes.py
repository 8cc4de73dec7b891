"""A support lead asks what unhappy customers complain about: detractors wrote that they waited
("slow", "waited", "λεπτά", "laukiau"), promoters that the agent was kind ("friendly",
"helpful", "ευγενικός", "malonus"). `surveybot report --themes` finds those words on the right
side in all three languages, each with its count, z-score and two example comments; offline,
from the comments stored in the database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli.core import app
from bot.reports.build import build_report
from bot.reports.themes import CommentIn, log_odds, side_of, terms_of, themes
from bot.survey.loader import FlowRegistry
from storage import open_storage
from storage.reporting import ReportQuery
from tests.conftest import SHIPPED_FLOWS
from tests.reports.themes_seed import COMPLAINTS, PRAISE, WORDS, complaints_and_praise
from tests.support.report_seed import seed, seed_into
from tests.support.storage_backends import BACKENDS

START = datetime(2024, 5, 6, 9, tzinfo=UTC)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(SHIPPED_FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / "config.yaml").write_text(
        'flows_dir: flows\nstorage: {url: "sqlite:///surveys.db"}\n', encoding="utf-8"
    )
    asyncio.run(seed(f"sqlite:///{tmp_path / 'surveys.db'}", tmp_path / "flows",
                     complaints_and_praise(START)))  # fmt: skip
    return tmp_path


EVERYTHING = ("report", "--period", "all")  # the seeded comments are not all from the last 30 days


def surveybot(workdir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--config", str(workdir / "config.yaml")])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_themes_put_waiting_with_detractors_and_kindness_with_promoters(
    workdir: Path,
) -> None:
    report: dict[str, Any] = json.loads(surveybot(workdir, *EVERYTHING, "--themes", "-f", "json"))
    (nps,) = report["themes"]
    assert (nps["flow_id"], nps["negative_comments"], nps["positive_comments"]) == ("nps", 48, 48)
    negative = {t["label"]: t for t in nps["negative"]}
    positive = {t["label"]: t for t in nps["positive"]}
    for lang, (complaints, praise) in WORDS.items():
        for word in complaints:
            assert word in negative and word not in positive, (lang, word)
        for word in praise:
            assert word in positive and word not in negative, (lang, word)
    waited = negative["waited"]  # lemma "wait": "waited" is the form customers wrote
    assert waited["term"] == "wait" and waited["count"] == 16 and waited["other_count"] == 0
    assert waited["z"] >= 1.96
    assert len(waited["examples"]) == 2 and all("aited" in e for e in waited["examples"])
    kind = positive["ευγενικός"]
    assert kind["count"] == 16 and all(e in PRAISE["el"] for e in kind["examples"])
    assert all(e in COMPLAINTS["lt"] for e in negative["laukiau"]["examples"])
    assert report_without_themes(workdir) == []  # only when asked for


def report_without_themes(workdir: Path) -> list[Any]:
    themes_: list[Any] = json.loads(surveybot(workdir, *EVERYTHING, "-f", "json"))["themes"]
    return themes_


def test_the_table_and_csv_show_the_themes(workdir: Path) -> None:
    table = surveybot(workdir, *EVERYTHING, "--themes")
    assert "Comment themes · Net Promoter Score: detractors (0–6) (48 comments)" in table
    row = next(line for line in table.splitlines() if " laukiau " in line)
    assert row.split()[:5] == ["detractors", "(0–6)", "laukiau", "16", "0"]
    rows = csv.DictReader(io.StringIO(surveybot(workdir, *EVERYTHING, "--themes", "-f", "csv")))
    sides = {r["text"]: (r["segment"], r["count"]) for r in rows if r["section"] == "theme"}
    assert sides["laukiau"] == ("negative", "16") and sides["malonus"] == ("positive", "16")


def test_words_are_lemmatized_in_the_comments_own_language() -> None:
    from bot.reports.themes import _Lemmatizer

    lemmas = _Lemmatizer()
    assert set(terms_of("I waited, and waited; waiting again!", "en", lemmas)) >= {"wait"}
    greek = terms_of("Περίμενα 40 λεπτά", "el", lemmas)
    assert greek == {"περιμένω": "περίμενα", "λεπτό": "λεπτά", "περιμένω λεπτό": "περίμενα λεπτά"}
    assert "laukti" in terms_of("Laukiau per ilgai", "lt", lemmas)
    # stop words go; a negation starts a phrase but is no theme on its own
    assert terms_of("The agent was not helpful", "en", lemmas) == {
        "agent": "agent", "helpful": "helpful", "not helpful": "not helpful"
    }  # fmt: skip
    # a locale without a lemmatizer still gets its words, lower-cased
    assert terms_of("Sehr freundlich", "de", lemmas) == {
        "sehr": "sehr", "freundlich": "freundlich", "sehr freundlich": "sehr freundlich"
    }  # fmt: skip


def test_which_side_a_comment_speaks_for() -> None:
    def side(metric: str, value: int, lo: int, hi: int) -> str | None:
        return side_of(CommentIn("f", "x", "en", metric, value, lo, hi))

    assert [side("nps", v, 0, 10) for v in (0, 6, 7, 8, 9, 10)] == [
        "negative", "negative", None, None, "positive", "positive"
    ]  # fmt: skip
    assert [side("csat", v, 0, 1) for v in (0, 1)] == ["negative", "positive"]
    assert [side("csat", v, 1, 5) for v in (1, 2, 3, 4, 5)] == [
        "negative", "negative", None, "positive", "positive"
    ]  # fmt: skip
    assert [side("ces", v, 1, 7) for v in (1, 3, 4, 5, 7)] == [
        "negative", "negative", None, "positive", "positive"
    ]  # fmt: skip
    assert side_of(CommentIn("f", "x", "en", None, None, None, None)) is None


def test_log_odds_worked_example() -> None:
    # Two sides of 20 terms each; "slow" 8 times on the negative side, never on the
    # positive; "agent" 5 and 5, "filler" 7 and 7; passives add nothing. Pooled total 40,
    # α0 = 4; prior for "slow" α = 4 * 8/40 = 0.8:
    # δ = ln(8.8/(20 + 4 - 8.8)) - ln(0.8/(20 + 4 - 0.8)) = ln(0.578947) - ln(0.034483)
    #   = 2.820752; σ = sqrt(1/8.8 + 1/0.8) = 1.167748; z = 2.415548 (by hand).
    # "agent" is as common on both sides: z = 0, no theme; "other", 5 times on the positive
    # side only, is not enough: α = 0.5, δ = ln(0.5/23.5) - ln(5.5/18.5) = -2.6366,
    # σ = sqrt(1/0.5 + 1/5.5) = 1.4771, z = -1.785.
    first = Counter({"slow": 8, "agent": 5, "filler": 7})
    second = Counter({"agent": 5, "friendly": 3, "filler": 7, "other": 5})
    ranked = log_odds(first, second, Counter())
    assert [t for t, _ in ranked["negative"]] == ["slow"]
    assert ranked["negative"][0][1] == pytest.approx(2.415548, abs=1e-6)
    assert ranked["positive"] == []


def test_a_flow_with_comments_on_one_side_only_has_no_themes() -> None:
    comments = [CommentIn("csat", "rude reply", "en", "csat", 0, 0, 1)] * 5
    (flow,) = themes(comments)
    assert (flow.negative_comments, flow.positive_comments) == (5, 0)
    assert flow.negative == [] and flow.positive == []


def test_comments_that_all_say_the_same_word_give_no_themes_and_no_error() -> None:
    # every comment is one term: nothing else to set it against (the odds' denominators are 0)
    comments = [CommentIn("nps", f"comment {i}", "en", "nps", i % 11, 0, 10) for i in range(50)]
    (flow,) = themes(comments)
    assert flow.negative == [] and flow.positive == []
    assert (flow.negative_comments, flow.positive_comments) == (34, 8)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_every_backend_finds_the_same_themes(backend: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(SHIPPED_FLOWS, flows, ignore=shutil.ignore_patterns("*.py"))
    registry = FlowRegistry(flows)
    registry.load_all()
    query = ReportQuery(themes=True, now=START + timedelta(days=7))
    async with BACKENDS[backend](tmp_path) as url:
        storage = open_storage(url)
        await storage.open()
        try:
            await seed_into(storage, flows, complaints_and_praise(START))
            report = await build_report(storage, query, registry, now=query.now)
        finally:
            await storage.close()
    (nps,) = report.themes
    assert {t.label for t in nps.negative} >= {"slow", "waited", "λεπτά", "laukiau"}
    assert {t.label for t in nps.positive} >= {"friendly", "helpful", "ευγενικός", "malonus"}
