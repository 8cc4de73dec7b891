"""Records <-> rows, shared by both backends: column lists, parameter tuples and row mappers.

Rows are read positionally in the column order of :mod:`storage.schema` (an aiosqlite row and
an asyncpg ``Record`` both index that way). Values differ only in how the driver hands over a
time (ISO text in SQLite, an aware datetime from asyncpg) and JSON (text from both): the
readers accept either, the writers ask the :class:`~storage.dialect.Dialect`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.survey.engine import Answer, SessionState
from storage.base import ExportRow, Job, SessionRecord, parse_iso
from storage.dialect import Dialect
from storage.schema import ANSWERS, SESSIONS

SESSION_COLUMNS = SESSIONS.column_list
ANSWER_COLUMNS = ANSWERS.column_list
JOB_COLUMNS = "id, kind, session_id, run_at, attempts, last_error"
# a job per kind and session: adding one again moves it (and makes it pending again)
JOB_UPSERT = (
    "INSERT INTO jobs (kind, session_id, run_at, attempts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (kind, session_id) DO UPDATE SET run_at = excluded.run_at, status = 'pending'"
)


def job_inserts(jobs: Sequence[Job], dialect: Dialect) -> list[tuple[str, list[Any]]]:
    """The statements that add ``jobs`` (each an upsert), for a transaction of their own."""
    sql = dialect.sql(JOB_UPSERT)
    return [(sql, [j.kind, j.session_id, dialect.time(j.run_at), j.attempts]) for j in jobs]


# the session fields update_session may change (it also moves the version)
UPDATABLE = frozenset(
    {"status", "sent_at", "expires_at", "reminded", "error", "chat_id", "send_at", "prompted",
     "prompt_message_id"}
)  # fmt: skip
EXPORT_SELECT = (
    "SELECT a.session_id, s.flow_id, s.flow_version, a.question_id, a.metric, a.value, a.option,"
    " a.text, s.platform, s.user_id, s.chat_id, s.thread_id, s.locale, s.context,"
    " s.triggered_by, a.answered_at FROM answers a JOIN sessions s ON s.id = a.session_id"
)


def next_version(expected: int) -> int:
    """The version a session gets from a change made at ``expected``: the one place that
    decides it. Backends write this value (``SET version = new WHERE version = expected``)
    and hand it back, so callers never compute it themselves."""
    return expected + 1


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def export_order(dialect: Dialect) -> str:
    """Answers in time order; ties on the session id sort by bytes on every backend, so
    exports are identical."""
    return f" ORDER BY a.answered_at, a.session_id{dialect.binary_order}, a.question_index"


def session_params(r: SessionRecord, dialect: Dialect) -> tuple[Any, ...]:
    t = dialect.time
    return (
        r.id, r.flow_id, r.flow_version, r.platform, r.user_id, r.chat_id, r.user_name,
        r.locale, json.dumps(r.context), r.triggered_by, r.status, r.state.model_dump_json(),
        r.version, r.idempotency_key, t(r.created_at), t(r.updated_at), t(r.send_at),
        t(r.sent_at), t(r.expires_at), t(r.completed_at), int(r.reminded), r.error,
        r.prompted, r.prompt_message_id, r.thread_id,
    )  # fmt: skip


def session_from_row(row: Sequence[Any]) -> SessionRecord:
    (sid, flow_id, flow_version, platform, user_id, chat_id, user_name, locale, context,
     triggered_by, status, state, version, key, created, updated, send_at, sent_at, expires,
     completed, reminded, error, prompted, prompt_message_id, thread_id) = row  # fmt: skip
    return SessionRecord(
        id=sid, flow_id=flow_id, flow_version=flow_version, platform=platform, user_id=user_id,
        chat_id=chat_id, user_name=user_name, locale=locale, context=json_dict(context),
        triggered_by=triggered_by, status=status,
        state=SessionState.model_validate_json(state), version=version, idempotency_key=key,
        created_at=as_time(created), updated_at=as_time(updated), send_at=opt_time(send_at),
        sent_at=opt_time(sent_at), expires_at=opt_time(expires),
        completed_at=opt_time(completed), reminded=bool(reminded), error=error,
        prompted=prompted, prompt_message_id=prompt_message_id, thread_id=thread_id,
    )  # fmt: skip


def answer_params(session_id: str, a: Answer, now: datetime, dialect: Dialect) -> tuple[Any, ...]:
    return (
        session_id, a.question_id, a.question_index, a.metric, a.value, a.option, a.text,
        int(a.skipped), a.scale_min, a.scale_max, dialect.time(now),
    )  # fmt: skip


def job_from_row(row: Sequence[Any]) -> Job:
    job_id, kind, session_id, run_at, attempts, last_error = row
    return Job(
        id=job_id, kind=kind, session_id=session_id, run_at=as_time(run_at), attempts=attempts,
        last_error=last_error,
    )  # fmt: skip


def export_from_row(row: Sequence[Any]) -> ExportRow:
    (sid, flow_id, version, qid, metric, value, option, text, platform, user_id, chat_id,
     thread_id, locale, context, triggered_by, answered_at) = row  # fmt: skip
    return ExportRow(
        session_id=sid, flow_id=flow_id, flow_version=version, question_id=qid, metric=metric,
        value=value if value is not None else option, text=text, platform=platform,
        user_id=user_id, chat_id=chat_id, thread_id=thread_id, locale=locale,
        context=json_dict(context), triggered_by=triggered_by, answered_at=as_time(answered_at),
    )  # fmt: skip


def as_time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else parse_iso(value)


def opt_time(value: str | datetime | None) -> datetime | None:
    return None if value is None else as_time(value)


def json_dict(raw: str | dict[str, str]) -> dict[str, str]:
    return raw if isinstance(raw, dict) else dict(json.loads(raw))
