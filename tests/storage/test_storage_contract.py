"""The storage contract: every backend in tests/support/storage_backends.BACKENDS passes every
test (the inbox and outbox half is in test_queue_contract.py).

Each test gets an opened, empty store (``storage``, from conftest.py). Times are passed in
explicitly (leases, expiry), so nothing here depends on the wall clock or on timing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.survey.engine import Answer, SessionState
from storage import open_storage
from storage.base import CommitOutcome, ExportRow, Job, SessionRecord, Storage, iso
from storage.migrations import POSTGRES, SQLITE
from storage.reporting import ReportQuery
from tests.support.storage_backends import SHARED

T0 = datetime(2024, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)
EXPORT_COLUMNS = (
    "session_id, flow_id, flow_version, question_id, metric, value, text, platform, user_id, "
    "chat_id, thread_id, locale, context, triggered_by, answered_at"
).split(", ")


def state(current: int | None = 0, **answers: Any) -> SessionState:
    return SessionState(
        locale="en", context={"ticket_id": "42", "agent": "ann"}, answers=answers,
        current=current, asked=(current or 0) + 1,
    )  # fmt: skip


def session(sid: str = "s1", **fields: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "id": sid, "flow_id": "nps", "flow_version": "v1", "platform": "telegram",
        "user_id": "u1", "locale": "en", "context": {"ticket_id": "42", "agent": "ann"},
        "triggered_by": "test", "status": "active", "state": state(), "created_at": T0,
        "updated_at": T0, "expires_at": T0 + timedelta(hours=72),
    }  # fmt: skip
    return SessionRecord(**(values | fields))


def score(value: int = 9) -> Answer:
    return Answer(
        question_id="score", question_index=0, metric="nps", value=value, scale_min=0, scale_max=10
    )


COMMENT = Answer(question_id="why", question_index=1, metric="text", text="Great service")


async def exported(storage: Storage, **filters: Any) -> list[ExportRow]:
    return [row async for row in storage.export_rows(**filters)]


async def answer_first(storage: Storage, sid: str = "s1", event: str | None = "e1") -> None:
    result = await storage.commit(
        sid, 0, state=state(1, score=9), status="active", now=T0, answer=score(), event_id=event
    )
    assert (result.result, result.version) == ("ok", 1)


# migrations and flows ------------------------------------------------------------------------
def test_migrations_are_numbered_alike() -> None:
    assert len(SQLITE) == len(POSTGRES)


async def test_opening_twice_migrates_once_and_keeps_data(storage: Storage) -> None:
    assert isinstance(storage, Storage)
    await storage.create_session(session())
    assert await storage.schema_version() == len(SQLITE)
    again = open_storage(storage.url)
    await again.open()
    try:
        assert await again.schema_version() == len(SQLITE)
        assert await again.get_session("s1") == session()
    finally:
        await again.close()


@pytest.mark.parametrize("url", SHARED, indirect=True)
async def test_workers_starting_together_migrate_once(url: str) -> None:
    stores = [open_storage(url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        versions = await asyncio.gather(*(s.schema_version() for s in stores))
        assert versions == [len(SQLITE)] * 4
        assert await stores[0].count_rows("sessions") == 0
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_flow_versions(storage: Storage) -> None:
    assert await storage.load_flow_version("nps", "v1") is None
    await storage.save_flow_version("nps", "v1", '{"id": "nps"}')
    await storage.save_flow_version("nps", "v1", '{"id": "changed"}')  # idempotent: kept
    await storage.save_flow_version("nps", "v2", '{"id": "nps", "v": 2}')
    assert await storage.load_flow_version("nps", "v1") == '{"id": "nps"}'
    assert await storage.load_flow_version("nps", "v2") == '{"id": "nps", "v": 2}'
    assert await storage.load_flow_version("csat", "v1") is None


# sessions ------------------------------------------------------------------------------------
async def test_create_and_get_session_round_trips_every_field(storage: Storage) -> None:
    record = session(
        chat_id="g1", user_name="Ann", status="scheduled", send_at=T0 + timedelta(hours=1),
        sent_at=T0, reminded=True, error="boom", prompted=0, prompt_message_id="m1",
        context={"z": "last", "a": "first"}, state=state(1, score=9),
    )  # fmt: skip
    assert await storage.create_session(record) == record
    got = await storage.get_session("s1")
    assert got == record
    assert got is not None and list(got.context) == ["z", "a"]  # key order kept
    assert got.created_at.utcoffset() == timedelta(0)
    assert await storage.get_session("nope") is None


async def test_idempotency_key_returns_the_existing_session(storage: Storage) -> None:
    first = await storage.create_session(session("s1", idempotency_key="ticket-7"))
    again = await storage.create_session(session("s2", idempotency_key="ticket-7", user_id="u2"))
    assert again == first
    assert await storage.get_session("s2") is None
    assert await storage.session_by_key("ticket-7") == first
    assert await storage.session_by_key("ticket-8") is None
    assert await storage.count_rows("sessions") == 1


async def test_active_session_by_chat_and_newest(storage: Storage) -> None:
    later = T0 + timedelta(minutes=5)
    await storage.create_session(session("dm-old"))
    await storage.create_session(session("dm-new", created_at=later, updated_at=later))
    await storage.create_session(session("dm-done", created_at=later, status="completed"))
    await storage.create_session(session("dm-sched", created_at=later, status="scheduled"))
    await storage.create_session(session("group", chat_id="g1"))
    await storage.create_session(session("slack", platform="slack"))
    dm = await storage.active_session("telegram", "u1", None)
    assert dm is not None and dm.id == "dm-new"
    group = await storage.active_session("telegram", "u1", "g1")
    assert group is not None and group.id == "group"
    assert await storage.active_session("telegram", "u1", "g2") is None
    assert await storage.active_session("telegram", "u2", None) is None
    slack = await storage.active_session("slack", "u1", None)
    assert slack is not None and slack.id == "slack"


async def test_active_session_by_thread(storage: Storage) -> None:
    """A reply in one thread (or forum topic) never answers a survey asked in another."""
    await storage.create_session(session("t1", platform="slack", chat_id="C1", thread_id="1.1"))
    later = T0 + timedelta(minutes=1)
    await storage.create_session(
        session("t2", platform="slack", chat_id="C1", thread_id="2.2", created_at=later)
    )
    first = await storage.active_session("slack", "u1", "C1", "1.1")
    assert first is not None and first.id == "t1" and first.thread_id == "1.1"
    second = await storage.active_session("slack", "u1", "C1", "2.2")
    assert second is not None and second.id == "t2"
    assert await storage.active_session("slack", "u1", "C1", "3.3") is None
    assert await storage.active_session("slack", "u1", "C1") is None  # not in the channel itself


async def test_last_asked(storage: Storage) -> None:
    assert await storage.last_asked("telegram", "u1", "nps") is None
    await storage.create_session(session("a"))
    scheduled = T0 + timedelta(days=2)
    await storage.create_session(session("b", status="scheduled", send_at=scheduled))
    await storage.create_session(session("c", status="failed", created_at=T0 + timedelta(9)))
    await storage.create_session(session("d", flow_id="csat", created_at=T0 + timedelta(9)))
    assert await storage.last_asked("telegram", "u1", "nps") == scheduled
    assert await storage.last_asked("telegram", "u1", "csat") == T0 + timedelta(9)
    assert await storage.last_asked("slack", "u1", "nps") is None


# commit --------------------------------------------------------------------------------------
async def test_commit_records_answer_state_and_event(storage: Storage) -> None:
    await storage.create_session(session())
    await answer_first(storage)
    got = await storage.get_session("s1")
    assert got is not None
    assert (got.version, got.state, got.status) == (1, state(1, score=9), "active")
    assert got.updated_at == T0 and got.completed_at is None
    assert [(r.question_id, r.value) for r in await exported(storage)] == [("score", 9)]
    assert await storage.claim_event("e1", T0) is False
    done = T0 + timedelta(minutes=1)
    final = state(None, score=9, why="Great service")
    outcome = await storage.commit("s1", 1, state=final, status="completed", now=done,
                                   answer=COMMENT)  # fmt: skip
    assert outcome == CommitOutcome(result="ok", version=2)
    got = await storage.get_session("s1")
    assert got is not None and (got.version, got.status, got.completed_at) == (2, "completed", done)
    expired = await storage.commit("s1", 2, state=final, status="expired", now=done)
    assert (expired.result, expired.version) == ("ok", 3)


async def assert_unchanged(storage: Storage, version: int, rows: list[ExportRow]) -> None:
    got = await storage.get_session("s1")
    assert got is not None and got.version == version
    assert got.state == (state(1, score=9) if version else state())
    assert await exported(storage) == rows


@pytest.mark.parametrize(
    ("version", "answer", "event", "expected"),
    [
        (1, COMMENT, "e1", "duplicate"),  # the event was processed before
        (1, score(3), "e2", "duplicate"),  # the question already has an answer
        (0, COMMENT, "e2", "conflict"),  # someone else moved the session first
        (0, COMMENT, None, "conflict"),
    ],
)
async def test_commit_refusals_change_nothing(
    storage: Storage, version: int, answer: Answer, event: str | None, expected: str
) -> None:
    await storage.create_session(session())
    await answer_first(storage)
    before = await exported(storage)
    later = T0 + timedelta(minutes=1)
    result = await storage.commit(
        "s1", version, state=state(None), status="completed", now=later, answer=answer,
        event_id=event,
    )  # fmt: skip
    assert result == CommitOutcome(result=expected)  # no new version
    await assert_unchanged(storage, 1, before)
    if event == "e2":
        assert await storage.claim_event("e2", later) is True  # it was not recorded


async def test_update_session(storage: Storage) -> None:
    await storage.create_session(session(status="scheduled"))
    sent = T0 + timedelta(seconds=3)
    changes: dict[str, Any] = {
        "status": "active", "sent_at": sent, "expires_at": sent + timedelta(days=1),
        "reminded": True, "error": "x", "chat_id": "g9", "send_at": sent, "prompted": 0,
        "prompt_message_id": "77",
    }  # fmt: skip
    assert await storage.update_session("s1", 0, **changes) == CommitOutcome(result="ok", version=1)
    got = await storage.get_session("s1")
    assert got is not None and got.version == 1
    assert got.model_dump(include=set(changes)) == changes
    assert (await storage.update_session("s1", 0, error="stale")).result == "conflict"
    assert (await storage.update_session("nope", 0, error="x")).result == "conflict"
    for forbidden in ({"state": state()}, {"version": 5}, {"user_id": "u2"}):
        with pytest.raises(ValueError):
            await storage.update_session("s1", 1, **forbidden)
    assert await storage.get_session("s1") == got


async def test_claim_event_once(storage: Storage) -> None:
    assert await storage.claim_event("tg:1", T0) is True
    assert await storage.claim_event("tg:1", T0) is False
    assert await storage.claim_event("tg:2", T0) is True


# invites -------------------------------------------------------------------------------------
async def test_invite_is_used_once(storage: Storage) -> None:
    await storage.create_invite("tok", "nps", {"ticket_id": "9"}, T0)
    assert await storage.consume_invite("tok", T0) == ("nps", {"ticket_id": "9"})
    assert await storage.consume_invite("tok", T0) is None
    assert await storage.consume_invite("unknown", T0) is None


# jobs ----------------------------------------------------------------------------------------
async def test_jobs_are_unique_per_kind_and_session(storage: Storage) -> None:
    first = await storage.add_job(Job(kind="remind", session_id="s1", run_at=T0))
    moved = T0 + timedelta(hours=2)
    assert await storage.add_job(Job(kind="remind", session_id="s1", run_at=moved)) == first
    other = await storage.add_job(Job(kind="expire", session_id="s1", run_at=T0))
    assert other != first
    assert [(j.id, j.kind, j.run_at) for j in await storage.pending_jobs("s1")] == [
        (other, "expire", T0), (first, "remind", moved),
    ]  # fmt: skip
    assert await storage.pending_jobs("s2") == []


async def test_a_new_sessions_jobs_are_stored_with_it_and_only_once(storage: Storage) -> None:
    """Its reminder and expiry go in the session's own transaction: no crash in between can
    leave a session that never expires; a repeated request (same key) adds none."""
    jobs = [Job(kind="expire", session_id="s1", run_at=T0 + timedelta(hours=72)),
            Job(kind="remind", session_id="s1", run_at=T0 + timedelta(hours=24))]  # fmt: skip
    await storage.create_session(session("s1", idempotency_key="k"), jobs=jobs)
    assert [(j.kind, j.run_at) for j in await storage.pending_jobs("s1")] == [
        ("remind", T0 + timedelta(hours=24)), ("expire", T0 + timedelta(hours=72)),
    ]  # fmt: skip
    later = [Job(kind="expire", session_id="s2", run_at=T0)]
    again = await storage.create_session(session("s2", idempotency_key="k"), jobs=later)
    assert again.id == "s1" and await storage.pending_jobs("s2") == []


async def test_claim_jobs_leases(storage: Storage) -> None:
    lease = timedelta(minutes=5)
    job_id = await storage.add_job(Job(kind="send", session_id="s1", run_at=T0))
    assert await storage.claim_jobs(T0 - timedelta(seconds=1), 10, lease) == []
    [job] = await storage.claim_jobs(T0, 10, lease)
    assert (job.id, job.kind, job.session_id, job.run_at, job.attempts) == (
        job_id, "send", "s1", T0, 1,
    )  # fmt: skip
    assert await storage.claim_jobs(T0 + lease, 10, lease) == []  # leased until T0 + lease
    [again] = await storage.claim_jobs(T0 + lease + timedelta(seconds=1), 10, lease)
    assert (again.id, again.attempts) == (job_id, 2)
    later = T0 + timedelta(hours=1)
    await storage.retry_job(job_id, later, "timeout")
    [pending] = await storage.pending_jobs("s1")
    assert (pending.run_at, pending.last_error) == (later, "timeout")
    assert await storage.claim_jobs(later - timedelta(seconds=1), 10, lease) == []
    [retried] = await storage.claim_jobs(later, 10, lease)
    assert (retried.attempts, retried.last_error) == (3, "timeout")
    await storage.finish_job(job_id)
    assert await storage.pending_jobs("s1") == []
    assert await storage.claim_jobs(later + timedelta(days=1), 10, lease) == []


async def test_claim_jobs_limit_order_and_rescheduling(storage: Storage) -> None:
    lease = timedelta(days=1)
    for i in range(5):
        await storage.add_job(Job(kind="send", session_id=f"s{i}", run_at=T0 - timedelta(i)))
    claimed = await storage.claim_jobs(T0, 3, lease)
    assert [j.session_id for j in claimed] == ["s4", "s3", "s2"]  # oldest first
    # Re-adding a leased job reschedules it: it is pending again at its new time.
    await storage.add_job(Job(kind="send", session_id="s4", run_at=T0 + timedelta(hours=1)))
    rest = await storage.claim_jobs(T0, 10, lease)
    assert [j.session_id for j in rest] == ["s1", "s0"]
    [rescheduled] = await storage.claim_jobs(T0 + timedelta(hours=1), 10, lease)
    assert rescheduled.session_id == "s4"


# data ----------------------------------------------------------------------------------------
async def test_export_rows(storage: Storage) -> None:
    athens = timezone(timedelta(hours=3))
    await storage.create_session(session("a", chat_id="g1"))
    await storage.create_session(session("b", flow_id="csat", platform="slack", user_id="U9"))
    await answer_first(storage, "a")
    skip = Answer(question_id="why", question_index=1, metric="text", skipped=True)
    later = (T0 + timedelta(hours=1)).astimezone(athens)
    assert (await storage.commit("a", 1, state=state(None), status="completed", now=later,
                                answer=skip)).ok  # fmt: skip
    choice = Answer(question_id="topic", question_index=0, metric="choice", option="billing")
    await storage.commit("b", 0, state=state(None), status="completed", now=later, answer=choice)
    rows = await exported(storage)
    assert [list(r.as_dict()) for r in rows] == [EXPORT_COLUMNS] * 2
    first, second = (r.as_dict() for r in rows)
    assert first == {
        "session_id": "a", "flow_id": "nps", "flow_version": "v1", "question_id": "score",
        "metric": "nps", "value": 9, "text": None, "platform": "telegram", "user_id": "u1",
        "chat_id": "g1", "thread_id": None, "locale": "en",
        "context": {"ticket_id": "42", "agent": "ann"},
        "triggered_by": "test", "answered_at": "2024-03-04T10:00:00.123456Z",
    }  # fmt: skip
    assert (second["value"], second["answered_at"]) == ("billing", "2024-03-04T11:00:00.123456Z")
    assert rows[1].answered_at.utcoffset() == timedelta(0)
    assert [r.session_id for r in await exported(storage, flow_id="csat")] == ["b"]
    assert [r.session_id for r in await exported(storage, since=later)] == ["b"]
    assert await exported(storage, flow_id="ces") == []


async def test_erase_user_counts(storage: Storage) -> None:
    for sid, user in (("a", "u1"), ("b", "u1"), ("c", "u2")):
        await storage.create_session(session(sid, user_id=user))
        await answer_first(storage, sid, event=None)
        await storage.add_job(Job(kind="remind", session_id=sid, run_at=T0))
    await storage.commit("a", 1, state=state(None), status="completed", now=T0, answer=COMMENT)
    assert await storage.erase_user("telegram", "u1") == (3, 2)
    assert await storage.get_session("a") is None and await storage.pending_jobs("a") == []
    assert [r.session_id for r in await exported(storage)] == ["c"]
    assert len(await storage.pending_jobs("c")) == 1
    assert await storage.erase_user("telegram", "u1") == (0, 0)


# reporting (issue 6): the generated SQL runs alike on every backend -------------------------
async def test_report_rows(storage: Storage) -> None:
    for sid, value in (("a", 9), ("b", 3)):
        await storage.create_session(session(sid, user_id=sid, sent_at=T0, prompted=0))
        await storage.commit(sid, 0, state=state(1), status="active", now=T0, answer=score(value))
    later = T0 + timedelta(minutes=1)
    await storage.commit("a", 1, state=state(None), status="completed", now=later, answer=COMMENT)
    rows = await storage.report_rows(ReportQuery(by="agent"))
    [scores] = rows["scores"]
    assert (scores["n"], scores["promoters"], scores["detractors"]) == (2, 1, 1)
    [comment] = rows["comments"]
    assert (comment["text"], comment["score_value"], comment["agent"]) == (
        "Great service",
        9,
        "ann",
    )
    assert comment["answered_at"] == iso(later)


# copy (issue 7) ------------------------------------------------------------------------------
async def test_dump_clear_load_round_trip(storage: Storage) -> None:
    await storage.save_flow_version("nps", "v1", "{}")
    await storage.create_session(session("a"))
    await answer_first(storage, "a")
    await storage.create_invite("tok", "nps", {"k": "v"}, T0)
    job_id = await storage.add_job(Job(kind="remind", session_id="a", run_at=T0))
    tables = await storage.copy_tables()
    assert set(tables) >= {"flow_versions", "sessions", "answers", "processed_events",
                           "invites", "jobs"}  # fmt: skip
    assert tables.index("sessions") < tables.index("answers")
    dumped = {t: [row async for row in storage.dump_rows(t)] for t in tables}
    counts = {t: await storage.count_rows(t) for t in tables}
    assert counts == {t: len(rows) for t, rows in dumped.items()}
    before = (await storage.get_session("a"), await exported(storage))
    await storage.clear_tables()
    assert {t: await storage.count_rows(t) for t in tables} == dict.fromkeys(tables, 0)
    for table in tables:
        assert await storage.load_rows(table, dumped[table]) == counts[table]
    assert (await storage.get_session("a"), await exported(storage)) == before
    assert await storage.claim_event("e1", T0) is False
    assert await storage.add_job(Job(kind="send", session_id="b", run_at=T0)) > job_id


# concurrency ---------------------------------------------------------------------------------
async def test_concurrent_commits_on_one_version_one_wins(storage: Storage) -> None:
    await storage.create_session(session())
    results = await asyncio.gather(*(
        storage.commit("s1", 0, state=state(1, score=i % 11), status="active", now=T0,
                       answer=score(i % 11), event_id=f"e{i}")
        for i in range(20)
    ))  # fmt: skip
    assert sorted(r.result for r in results) == ["conflict"] * 19 + ["ok"], results
    got = await storage.get_session("s1")
    rows = await exported(storage)
    assert got is not None and got.version == 1 and len(rows) == 1
    assert got.state.answers["score"] == rows[0].value


async def test_two_handles_share_sessions_events_and_jobs(
    storage: Storage, second: Storage
) -> None:
    await storage.create_session(session())
    handles = [storage, second] * 10
    results = await asyncio.gather(*(
        h.commit("s1", 0, state=state(1, score=9), status="active", now=T0, answer=score(),
                 event_id="same-update")
        for h in handles
    ))  # fmt: skip
    assert [r.result for r in results].count("ok") == 1 and len(await exported(second)) == 1
    claims = await asyncio.gather(*(h.claim_event("tg:5", T0) for h in handles))
    assert claims.count(True) == 1
    for i in range(30):
        await storage.add_job(Job(kind="send", session_id=f"j{i}", run_at=T0))

    async def drain(handle: Storage) -> list[str]:
        taken: list[str] = []
        while batch := await handle.claim_jobs(T0, 4, timedelta(minutes=5)):
            taken += [j.session_id for j in batch]
        return taken

    runs = await asyncio.gather(*(drain(h) for h in [storage, second, storage, second]))
    everything = [sid for run in runs for sid in run]
    assert sorted(everything) == sorted(f"j{i}" for i in range(30))  # each job exactly once
