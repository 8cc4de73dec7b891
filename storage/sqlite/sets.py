"""The set-based half of the SQLite group commit (:mod:`storage.sqlite.batch`): the row writes
and answer commits a batch applies, each kind as one multi-row statement, run on the database
thread inside the batch's transaction.

Answer commits: one ``INSERT OR IGNORE ... RETURNING`` for the event ids, one for the answers,
one ``UPDATE ... FROM (VALUES ...) RETURNING`` for the sessions (guarded by their expected
version), then the applied commits' inbox rows marked done and outbox rows inserted, and deletes
that undo the event and answer rows of any commit whose session update did not apply — so each
answer commit is all-or-nothing, exactly as if it ran alone.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any

from storage.queues import INBOX_KEEP, OUTBOX_NEW, chunks, insert_sql
from storage.rows import ANSWER_COLUMNS


@dataclass(frozen=True)
class AnswerCommit:
    """One answer commit: the event id, the answer row and the session's new state."""

    session_id: str
    expected_version: int
    new_version: int
    state_json: str
    status: str
    now: str
    answer: tuple[Any, ...] | None  # the ANSWER_COLUMNS values, session_id first
    event_id: str | None
    inbox_id: int | None = None  # marked done if the commit applies
    inbox_event: tuple[Any, ...] | None = None  # or this event (INBOX_KEEP values) stored done
    outbox: tuple[tuple[Any, ...], ...] = ()  # OUTBOX_NEW values, inserted if it applies


@dataclass(frozen=True)
class SetStatement:
    """A statement run once per batch for the rows of every request naming it: ``head``, one
    ``(?, ...)`` of ``width`` values per row, ``tail``. With ``key_width`` the tail RETURNs the
    first ``key_width`` values of each row it wrote, and each request learns how many of its
    rows were written (a row whose key an earlier row in the batch took counts for that one)."""

    head: str
    width: int
    tail: str
    key_width: int = 0


@dataclass(frozen=True)
class SetWrite:
    statement: SetStatement
    rows: tuple[tuple[Any, ...], ...]


def apply_sets(db: sqlite3.Connection, sets: list[SetWrite]) -> list[int]:
    """Run each set statement once (in parts under SQLite's 32766 values); rows written per
    request, in order."""
    written = [0] * len(sets)
    members: dict[SetStatement, list[int]] = {}
    for index, work in enumerate(sets):
        members.setdefault(work.statement, []).append(index)
    for statement, indexes in members.items():
        rows = [(i, row) for i in indexes for row in sets[i].rows]
        per = max(1, 30000 // statement.width)
        keys: Counter[tuple[Any, ...]] = Counter()
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            sql = statement.head + _values(len(part), statement.width) + statement.tail
            values = [v for _, row in part for v in row]
            if statement.key_width:
                keys.update(tuple(r) for r in db.execute(sql, values).fetchall())
            else:
                db.execute(sql, values)
        for i, row in rows:
            key = row[: statement.key_width]
            if statement.key_width and keys[key] > 0:
                keys[key] -= 1
                written[i] += 1
    return written


def _values(rows: int, width: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return ", ".join([one] * rows)


def apply_commits(db: sqlite3.Connection, commits: list[AnswerCommit]) -> list[str]:
    """Apply answer commits as sets; a verdict per commit, in order."""
    events = [c for c in commits if c.event_id is not None]
    fresh_events: set[str] = set()
    if events:
        rows = db.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, processed_at) VALUES "
            + _values(len(events), 2)
            + " RETURNING event_id",
            [v for c in events for v in (c.event_id, c.now)],
        )
        fresh_events = {str(r[0]) for r in rows}
    live = [c for c in commits if c.event_id is None or c.event_id in fresh_events]
    with_answer = [c for c in live if c.answer is not None]
    fresh_answers: set[str] = set()
    if with_answer:
        rows = db.execute(
            f"INSERT OR IGNORE INTO answers ({ANSWER_COLUMNS}) VALUES "
            + _values(len(with_answer), 11)
            + " RETURNING session_id",
            [v for c in with_answer for v in c.answer or ()],
        )
        fresh_answers = {str(r[0]) for r in rows}
    ready = [c for c in live if c.answer is None or c.session_id in fresh_answers]
    updated: set[str] = set()
    if ready:
        rows = db.execute(
            "WITH v(id, expected, new, state, status, now) AS (VALUES "
            + _values(len(ready), 6)
            + ") UPDATE sessions SET state = v.state, status = v.status,"
            " version = v.new, updated_at = v.now,"
            " completed_at = CASE WHEN v.status = 'completed' THEN v.now"
            " ELSE sessions.completed_at END"
            " FROM v WHERE sessions.id = v.id AND sessions.version = v.expected"
            " RETURNING sessions.id",
            [v for c in ready for v in (c.session_id, c.expected_version, c.new_version,
                                        c.state_json, c.status, c.now)],
        )  # fmt: skip
        updated = {str(r[0]) for r in rows}
    # what applied commits bring along: their inbox event is done, their messages owed
    applied = [c for c in commits if c.session_id in updated]
    handled = [c for c in applied if c.inbox_id is not None]
    if handled:
        db.execute(
            "WITH v(id, now) AS (VALUES " + _values(len(handled), 2) + ") UPDATE inbox SET"
            " status = 'done', done_at = v.now, lease_until = NULL FROM v WHERE inbox.id = v.id",
            [v for c in handled for v in (c.inbox_id, c.now)],
        )
    for c in applied:
        if c.inbox_event is not None:  # handled before it was stored: stored done now
            db.execute(INBOX_KEEP, c.inbox_event)
    for part in chunks([row for c in applied for row in c.outbox]):
        db.execute(insert_sql("outbox", OUTBOX_NEW, len(part)), [v for row in part for v in row])
    # undo what the commits that did not go all the way wrote
    stale = [c for c in commits if c.session_id not in updated]
    undo_events = [c.event_id for c in stale if c.event_id in fresh_events]
    undo_answers = [c for c in stale if c.answer is not None and c.session_id in fresh_answers]
    if undo_events:
        db.execute(
            f"DELETE FROM processed_events WHERE event_id IN ({', '.join('?' * len(undo_events))})",
            undo_events,
        )
    for c in undo_answers:
        assert c.answer is not None
        db.execute(
            "DELETE FROM answers WHERE session_id = ? AND question_id = ?",
            (c.session_id, c.answer[1]),
        )
    # an answer already there: a conflict when the session moved on, else a duplicate
    answered = [c for c in live if c.answer is not None and c.session_id not in fresh_answers]
    versions: dict[str, int] = {}
    if answered:
        rows = db.execute(
            f"SELECT id, version FROM sessions WHERE id IN ({', '.join('?' * len(answered))})",
            [c.session_id for c in answered],
        )
        versions = {str(r[0]): int(r[1]) for r in rows}
    verdicts = []
    for c in commits:
        if c.session_id in updated:
            verdicts.append("ok")
        elif c.event_id is not None and c.event_id not in fresh_events:
            verdicts.append("duplicate")  # the event was handled before
        elif c in answered and versions.get(c.session_id) == c.expected_version:
            verdicts.append("duplicate")  # the question has its answer already
        else:
            verdicts.append("conflict")  # another writer moved the session first
    return verdicts
