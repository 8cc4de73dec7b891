"""The report's SQL on every storage backend gives the same figures, a rating's top two boxes
and a choice's options are counted right, and the PostgreSQL rendering of the statements is
well formed (numbered parameters, casts)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.reports.build import build_report
from bot.survey.engine import Answer, SessionState
from bot.survey.loader import FlowRegistry
from storage import open_storage
from storage.base import SessionRecord
from storage.reporting import ReportQuery, report_sql
from storage.sqlite.backend import SQLiteStorage
from tests.support.report_seed import Visit, seed_into, two_weeks
from tests.support.storage_backends import BACKENDS

MONDAY = datetime(2024, 3, 4, tzinfo=UTC)


@pytest.fixture(params=sorted(BACKENDS))
async def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with BACKENDS[request.param](tmp_path) as url:
        yield url


async def test_every_backend_reports_the_same_figures(backend_url: str, flows_dir: Path) -> None:
    storage = open_storage(backend_url)
    await storage.open()
    try:
        await seed_into(storage, flows_dir, two_weeks(MONDAY))
        query = ReportQuery(by="agent", since=MONDAY + timedelta(days=7), comments=5,
                            now=MONDAY + timedelta(days=14))  # fmt: skip
        report = await build_report(storage, query, now=query.now)
    finally:
        await storage.close()
    reference = SQLiteStorage("sqlite:///:memory:")
    await reference.open()
    try:
        await seed_into(reference, flows_dir, two_weeks(MONDAY))
        want = await build_report(reference, query, now=query.now)
    finally:
        await reference.close()
    assert report.model_dump(exclude={"comments"}) == want.model_dump(exclude={"comments"})
    assert [c.text for c in report.comments] == [c.text for c in want.comments]
    assert report.scores and report.segments and report.trends and report.questions


def test_postgres_statements_use_numbered_parameters_and_casts() -> None:
    query = ReportQuery(flow_id="nps", since=MONDAY, until=MONDAY + timedelta(days=7),
                        platform="telegram", by="agent", now=MONDAY)  # fmt: skip
    for statement in report_sql(query, "postgres"):
        assert "?" not in statement.sql and "NOT INDEXED" not in statement.sql
        assert all(isinstance(p, (str, int, datetime)) for p in statement.params)
        highest = max(int(n) for n in re.findall(r"\$(\d+)", statement.sql))
        assert highest == len(statement.params)
    answers = report_sql(query, "postgres")[0].sql
    assert "CAST(s.context AS json) ->> 'agent'" in answers and "date_trunc('week'" in answers


SUPPORT_FLOW = """\
id: support
name: Support rating
locales: [en]
questions:
  - id: rating
    type: rating
    text: "How would you rate our support?"
  - id: channel
    type: choice
    text: "How did you reach us?"
    options:
      - {id: chat, text: Chat}
      - {id: email, text: Email}
      - {id: phone, text: Phone}
"""


async def test_a_five_point_rating_counts_its_top_two_boxes(flows_dir: Path) -> None:
    # The worked example of issue 6: 1:14, 2:9, 3:10, 4:32, 5:42 -> 69.2% (59.9–77.1).
    (flows_dir / "support.yaml").write_text(SUPPORT_FLOW, encoding="utf-8")
    counts = {1: 14, 2: 9, 3: 10, 4: 32, 5: 42}
    channels = ["1", "2", "2", "3"]  # chat, email, email, phone, in turn
    ratings = [r for r, c in counts.items() for _ in range(c)]
    visits = [
        Visit("support", "slack", "erin", "en", MONDAY + timedelta(minutes=10 * i),
              (str(r), channels[i % 4]))
        for i, r in enumerate(ratings)
    ]  # fmt: skip
    storage = SQLiteStorage("sqlite:///:memory:")
    await storage.open()
    try:
        await seed_into(storage, flows_dir, visits)
        registry = FlowRegistry(flows_dir)
        registry.load_all()
        report = await build_report(storage, ReportQuery(flow_id="support"), registry)
    finally:
        await storage.close()
    (line,) = report.scores
    assert (line.metric, line.score.n, round(line.score.value or 0, 1)) == ("csat", 107, 69.2)
    assert (round(line.score.low or 0, 1), round(line.score.high or 0, 1)) == (59.9, 77.1)
    rating, channel = report.distributions
    assert [(b.label, b.count) for b in rating.buckets] == [(str(r), c) for r, c in counts.items()]
    assert [(b.label, b.count) for b in channel.buckets] == [("chat", 27), ("email", 54),
                                                             ("phone", 26)]  # fmt: skip


async def test_the_report_segments_by_the_channel_a_survey_was_asked_in(
    backend_url: str, flows_dir: Path
) -> None:
    """Two Slack support channels and the DMs: each its own CSAT, with its own n."""
    storage = open_storage(backend_url)
    await storage.open()
    registry = FlowRegistry(flows_dir)
    registry.load_all()
    csat = registry.get("csat")
    assert csat is not None
    await storage.save_flow_version("csat", csat.version, csat.to_json())
    asked = [("C0ACME", 1), ("C0ACME", 1), ("C0ACME", 0), ("C0BETA", 0), (None, 1)]
    try:
        for i, (channel, yes) in enumerate(asked):
            state = SessionState(locale="en", current=0)
            await storage.create_session(SessionRecord(
                id=f"s{i}", flow_id="csat", flow_version=csat.version, platform="slack",
                user_id=f"U{i}", chat_id=channel, thread_id=f"17.{i}" if channel else None,
                locale="en", state=state, status="active", created_at=MONDAY,
                updated_at=MONDAY, sent_at=MONDAY,
            ))  # fmt: skip
            answer = Answer(question_id="satisfied", question_index=0, metric="csat", value=yes,
                            scale_min=0, scale_max=1)  # fmt: skip
            done = SessionState(locale="en", current=None)
            result = await storage.commit(f"s{i}", 0, state=done, status="completed",
                                          now=MONDAY, answer=answer)  # fmt: skip
            assert result
        query = ReportQuery(by="channel", now=MONDAY + timedelta(days=1))
        report = await build_report(storage, query, now=query.now)
    finally:
        await storage.close()
    by_channel = {s.segment: (s.score.n, round(s.score.value)) for s in report.segments}
    assert by_channel == {"C0ACME": (3, 67), "C0BETA": (1, 0), "(none)": (1, 100)}
