"""When storage cannot write, the caller gets the database's own error, ``health()`` says so
(for ``/healthz``), the log says it once, and everything works again when the cause is gone."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from storage import dialect
from storage.base import InboxEvent, Storage
from storage.postgres.sql import quote_ident, split_url
from storage.schema import PROCESSED_EVENTS, create_table
from storage.sqlite.backend import SQLiteStorage
from storage.sqlite.connection import sqlite_path

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def updates(first: int, count: int, size: int = 3000) -> list[InboxEvent]:
    return [
        InboxEvent(platform="telegram", event_id=str(n), key=f"telegram:{n}", user_id=str(n),
                   payload=f'{{"update_id": {n}, "text": "{"x" * size}"}}', received_at=T0)
        for n in range(first, first + count)
    ]  # fmt: skip


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_full_disk_is_reported_as_a_full_disk_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = SQLiteStorage(f"sqlite:///{tmp_path / 'surveys.db'}")
    await storage.open()
    try:
        # the file may not grow past two more pages: as good as a full disk
        [(pages,)] = await storage.conn.all("PRAGMA page_count")
        await storage.conn.all(f"PRAGMA max_page_count = {pages + 2}")
        with caplog.at_level(logging.INFO):
            for attempt in range(3):  # the webhook is called again and again
                with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
                    await storage.inbox_put(updates(attempt * 50, 50))
            with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
                await storage.create_invite("tok", "nps", {"note": "y" * 20000}, T0)
        health = storage.health()
        assert not health.ok and "database or disk is full" in (health.error or "")
        assert len(errors(caplog)) == 1 and "database or disk is full" in errors(caplog)[0]
        assert "cannot rollback" not in caplog.text
        await storage.conn.all("PRAGMA max_page_count = 1073741823")  # space is back
        assert await storage.inbox_put(updates(0, 150)) == 150  # none half-stored before
        assert storage.health().ok
        assert "work again" in caplog.text
    finally:
        await storage.close()


async def test_a_read_only_database_is_reported_and_nothing_is_stored(tmp_path: Path) -> None:
    storage = SQLiteStorage(f"sqlite:///{tmp_path / 'surveys.db'}")
    await storage.open()
    try:
        await storage.conn.all("PRAGMA query_only = 1")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await storage.inbox_put(updates(1, 1))
        assert "readonly" in (storage.health().error or "")
        await storage.conn.all("PRAGMA query_only = 0")
        assert await storage.inbox_put(updates(1, 1)) == 1
        assert storage.health().ok
    finally:
        await storage.close()


async def drop_and_restore(url: str, restore: bool) -> None:
    """Remove (or put back) the processed_events table behind the backend's back."""
    if url.startswith("sqlite"):
        sql = create_table(PROCESSED_EVENTS, dialect.SQLITE) if restore else None
        with sqlite3.connect(sqlite_path(url)) as db:
            db.execute(sql or "DROP TABLE processed_events")
        return
    dsn, schema = split_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SET search_path TO {quote_ident(schema or 'public')}")
        sql = create_table(PROCESSED_EVENTS, dialect.POSTGRES) if restore else None
        await conn.execute(sql or "DROP TABLE processed_events")
    finally:
        await conn.close()


async def test_every_backend_reports_failing_writes_until_one_succeeds(storage: Storage) -> None:
    assert storage.health().ok
    assert await storage.claim_event("tg:1", T0) is True
    await drop_and_restore(storage.url, restore=False)
    with pytest.raises(Exception, match="processed_events"):
        await storage.claim_event("tg:2", T0)
    health = storage.health()
    assert not health.ok and "processed_events" in (health.error or "")
    assert health.failing_since is not None
    assert await storage.get_session("nobody") is None  # reads and refusals do not clear it
    assert not storage.health().ok
    await drop_and_restore(storage.url, restore=True)
    assert await storage.claim_event("tg:2", T0) is True
    assert storage.health().ok
