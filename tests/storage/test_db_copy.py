"""`surveybot db copy` / `db migrate`: moving an installation from SQLite to PostgreSQL (and
back) keeps every row, prints the counts, and never writes over data unless told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.chat import Address
from bot.cli.core import app
from bot.survey.engine import Answer, SessionState
from storage import open_storage
from storage.base import Followup, InboxEvent, Job, OutboxMessage, SessionRecord, Storage
from storage.migrations import SQLITE
from storage.reporting import ReportQuery, SegmentBy
from tests.support.storage_backends import postgres_url

T0 = datetime(2024, 3, 4, 10, 0, 0, 250000, tzinfo=UTC)
runner = CliRunner()
SEGMENTS: list[SegmentBy | None] = [None, "platform", "agent", "locale", "week"]


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[str]:
    async with postgres_url(tmp_path) as url:
        yield url


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'data' / 'surveys.db'}"
    asyncio.run(populate(url))
    return url


def record(sid: str, user: str, **fields: Any) -> SessionRecord:
    state = SessionState(locale="el", context={"agent": "ann", "ticket_id": sid}, current=0)
    values: dict[str, Any] = {
        "id": sid, "flow_id": "nps", "flow_version": "v1", "platform": "telegram",
        "user_id": user, "locale": "el", "context": state.context, "state": state,
        "created_at": T0, "updated_at": T0, "sent_at": T0, "expires_at": T0 + timedelta(3),
    }  # fmt: skip
    return SessionRecord(**(values | fields))


async def populate(url: str) -> None:
    """Three sessions (one finished, one half-way, one scheduled with a job), an invite,
    processed events, inbox events (one handled with its answer, one quarantined), an owed
    message and the followed-up alert of the detractor: every table has rows."""
    store = open_storage(url)
    await store.open()
    try:
        await store.save_flow_version("nps", "v1", '{"id": "nps"}')
        for sid, user, value in (("s-a", "1", 9), ("s-b", "2", 3)):
            await store.create_session(
                record(sid, user, platform="slack" if value < 5 else "telegram")
            )
            score = Answer(question_id="score", question_index=0, metric="nps", value=value,
                           scale_min=0, scale_max=10)  # fmt: skip
            state = SessionState(locale="el", current=1, answers={"score": value})
            await store.commit(sid, 0, state=state, status="active", now=T0, answer=score,
                               event_id=f"tg:{sid}")  # fmt: skip
        why = Answer(question_id="why", question_index=1, metric="text", text="Πολύ καλά!")
        done = SessionState(locale="el", current=None, answers={"score": 9, "why": "Πολύ καλά!"})
        events = [InboxEvent(platform="telegram", event_id=f"u{i}", key="telegram:1",
                             user_id="1", payload=f'{{"update_id": {i}}}', received_at=T0)
                  for i in (1, 2)]  # fmt: skip
        assert await store.inbox_put(events) == 2
        [first] = await store.inbox_claim(10, timedelta(minutes=1), T0 + timedelta(1))
        thanks = OutboxMessage(address=Address(platform="telegram", user_id="1"), kind="thanks",
                               body='{"text": "Ευχαριστούμε!"}', created_at=T0 + timedelta(1),
                               session_id="s-a")  # fmt: skip
        await store.commit("s-a", 1, state=done, status="completed", now=T0 + timedelta(1),
                           answer=why, inbox_id=first.id, outbox=[thanks])  # fmt: skip
        [second] = await store.inbox_claim(10, timedelta(minutes=1), T0 + timedelta(1))
        await store.inbox_failed(second.id or 0, "KeyError: 'date'", None)
        await store.create_session(record("s-c", "3", status="scheduled", idempotency_key="k"))
        await store.add_job(Job(kind="send", session_id="s-c", run_at=T0 + timedelta(hours=1)))
        await store.add_job(Job(kind="remind", session_id="s-b", run_at=T0 + timedelta(hours=2)))
        await store.create_invite("invite-1", "csat", {"ticket_id": "77"}, T0)
        alert = Followup(session_id="s-b", question_id="score", flow_id="nps", platform="slack",
                         user_id="2", metric="nps", score=3, destination="slack:C0STAFF",
                         locale="el", created_at=T0, context={"ticket_id": "s-b"})  # fmt: skip
        await store.followup_put([alert])
        followup = await store.followup_of("s-b", "score")
        assert followup is not None and followup.id is not None
        await store.followup_own(followup.id, "slack:U0ANN", T0 + timedelta(minutes=5))
    finally:
        await store.close()


async def snapshot(url: str) -> dict[str, Any]:
    """Everything the application can read back."""
    store = open_storage(url)
    await store.open()
    try:
        return {
            "export": [row.as_dict() async for row in store.export_rows()],
            "sessions": [await store.get_session(s) for s in ("s-a", "s-b", "s-c")],
            "by_key": await store.session_by_key("k"),
            "jobs": [await store.pending_jobs(s) for s in ("s-b", "s-c")],
            "flow": await store.load_flow_version("nps", "v1"),
            "quarantined": await store.inbox_quarantined(),
            "outbox": await store.outbox_recent(),
            "followups": await store.followups(),
            "queues": await store.queue_counts(),
            "counts": {t: await store.count_rows(t) for t in await store.copy_tables()},
        }
    finally:
        await store.close()


async def after_copy_it_works(url: str) -> None:
    """The copied store carries on: events and invites remembered, job and outbox ids
    continue, inbox events already stored are recognised."""
    store: Storage = open_storage(url)
    await store.open()
    try:
        assert await store.claim_event("tg:s-a", T0) is False
        assert await store.consume_invite("invite-1", T0) == ("csat", {"ticket_id": "77"})
        [job] = await store.pending_jobs("s-b")
        assert await store.add_job(Job(kind="expire", session_id="s-b", run_at=T0)) > (job.id or 0)
        [message] = await store.outbox_recent()
        again = message.model_copy(update={"id": None})
        assert await store.outbox_put([again]) == 1
        assert (await store.outbox_recent())[0].id > (message.id or 0)  # type: ignore[operator]
        [poison] = await store.inbox_quarantined()
        assert await store.inbox_put([poison.model_copy(update={"id": None})]) == 0  # known
    finally:
        await store.close()


def copy(source: str, target: str, *extra: str) -> Any:
    return runner.invoke(app, ["db", "copy", "--from", source, "--to", target, *extra])


def test_copy_sqlite_to_postgres_keeps_everything(sqlite: str, pg: str, tmp_path: Path) -> None:
    result = copy(sqlite, pg)
    assert result.exit_code == 0, result.output
    for line in ("sessions: 3 rows", "answers: 3 rows", "processed_events: 2 rows",
                 "jobs: 2 rows", "invites: 1 row", "flow_versions: 1 row", "inbox: 2 rows",
                 "outbox: 1 row", "followups: 1 row"):  # fmt: skip
        assert line in result.output
    assert "copied 16 rows in 9 tables; counts verified" in result.output
    original = asyncio.run(snapshot(sqlite))
    assert asyncio.run(snapshot(pg)) == original
    assert len(original["export"]) == 3
    # ... and back again, into a new SQLite file
    back = f"sqlite:///{tmp_path / 'back.db'}"
    assert copy(pg, back).exit_code == 0
    assert asyncio.run(snapshot(back)) == original
    asyncio.run(after_copy_it_works(pg))
    asyncio.run(after_copy_it_works(back))


async def reports(url: str) -> list[dict[str, Any]]:
    store = open_storage(url)
    await store.open()
    try:
        found = [await store.report_rows(ReportQuery(by=by)) for by in SEGMENTS]
    finally:
        await store.close()
    # the same rows; their order within a section is not part of the contract
    return [{k: sorted(rows, key=repr) for k, rows in report.items()} for report in found]


def test_reports_match_across_backends(sqlite: str, pg: str) -> None:
    """The same data gives the same report rows on every backend (issue 6's SQL generator)."""
    assert copy(sqlite, pg).exit_code == 0
    expected = asyncio.run(reports(sqlite))
    assert expected[0]["scores"] and expected[0]["comments"]
    assert asyncio.run(reports(pg)) == expected


def test_copy_refuses_a_non_empty_target_unless_forced(sqlite: str, pg: str) -> None:
    assert copy(sqlite, pg).exit_code == 0
    before = asyncio.run(snapshot(pg))
    refused = copy(sqlite, pg)
    assert refused.exit_code == 1
    assert "target is not empty" in refused.output and "--force" in refused.output
    assert asyncio.run(snapshot(pg)) == before
    forced = copy(sqlite, pg, "--force")
    assert forced.exit_code == 0, forced.output
    assert asyncio.run(snapshot(pg)) == before  # replaced, not doubled


def test_copy_to_itself_and_to_nowhere_fail_cleanly(sqlite: str) -> None:
    assert copy(sqlite, sqlite).exit_code == 2
    unreachable = copy(sqlite, "postgresql://postgres@127.0.0.1:1/test")
    assert unreachable.exit_code == 2 and "copy failed" in unreachable.output


def test_migrate(pg: str) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["db", "migrate", "--url", pg])
        assert result.exit_code == 0, result.output
        assert f"schema at version {len(SQLITE)}" in result.output
