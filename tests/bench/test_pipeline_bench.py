"""The pipeline benchmark's driver still runs end to end (a handful of customers, tiny bulk):
both bots start, every customer gets from /start to the thanks, and the figures have the shape
the table prints. No figure is judged here: bench/pipeline_bench.py prints them."""

from __future__ import annotations

from pathlib import Path

from bench.pipeline_bench import main
from bench.pipeline_bots import SURVEY_METHODS


async def test_customers_answer_nps_with_both_bots_and_during_a_bulk_send(tmp_path: Path) -> None:
    figures = await main(["--rounds", "1", "--concurrency", "1,2", "--customers", "2,3",
                          "--json", str(tmp_path / "interactive.json")])  # fmt: skip

    assert (tmp_path / "interactive.json").exists()
    assert set(figures["bots"]) == {"baseline", "surveybot"}
    assert set(figures["ratios"]) == {"1", "2"}
    for bot in figures["bots"].values():
        assert [lv["concurrency"] for lv in bot["levels"]] == [1, 2]
        for level in bot["levels"]:
            assert level["completed"] == level["customers"], level["errors"]
            assert level["answers_per_s"] > 0
            assert 0 < level["p50_ms"] <= level["p99_ms"]
        assert set(bot["calls_per_survey"]) == set(SURVEY_METHODS)
        assert bot["calls_per_survey"]["sendMessage"] >= 2  # a question and the thanks at least
        assert bot["429s"] == 0

    bulk = await main(["--scenario", "bulk", "--bulk", "6", "--bulk-customers", "2"])

    assert bulk["bulk_sent"] == 6
    assert sum(bulk["api_answers"].values()) == 6
    assert bulk["completed"] == bulk["customers"] >= 2, bulk["errors"]
    assert all(step["n"] == bulk["customers"] for step in bulk["steps"].values())
    assert bulk["configured_rate"] is None or bulk["configured_rate"] > 0
    assert isinstance(bulk["429s"], int)
