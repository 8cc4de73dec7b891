"""PostgreSQL helpers for storage.postgres.backend: the URL option, rows <-> records, SQL text.

asyncpg hands timestamptz back as aware UTC datetimes and ``json`` columns as text, so the
records that cross the Storage protocol are exactly the ones SQLite produces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.survey.engine import Answer, SessionState
from storage.base import ExportRow, Job, SessionRecord, iso

SESSION_COLUMNS = (
    "id, flow_id, flow_version, platform, user_id, chat_id, user_name, locale, context, "
    "triggered_by, status, state, version, idempotency_key, created_at, updated_at, send_at, "
    "sent_at, expires_at, completed_at, reminded, error, prompted, prompt_message_id"
)
SESSION_INSERT = (
    f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(SESSION_COLUMNS.split(',')) + 1))})"
)
UPDATABLE = frozenset(
    {"status", "sent_at", "expires_at", "reminded", "error", "chat_id", "send_at", "prompted",
     "prompt_message_id"}
)  # fmt: skip
JOB_COLUMNS = "id, kind, session_id, run_at, attempts, last_error"
EXPORT_SELECT = (
    "SELECT a.session_id, s.flow_id, s.flow_version, a.question_id, a.metric, a.value, a.option,"
    " a.text, s.platform, s.user_id, s.chat_id, s.locale, s.context, s.triggered_by,"
    " a.answered_at FROM answers a JOIN sessions s ON s.id = a.session_id"
)
# "C" collation: ties on the session id sort by bytes, as in SQLite, so exports are identical.
EXPORT_ORDER = ' ORDER BY a.answered_at, a.session_id COLLATE "C", a.question_index'
ANSWER_INSERT = (
    "INSERT INTO answers (session_id, question_id, question_index, metric, value, option, text,"
    " skipped, scale_min, scale_max, answered_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
)
COMMIT_UPDATE = (
    "UPDATE sessions SET state = $1, status = $2, version = version + 1, updated_at = $3,"
    " completed_at = CASE WHEN $2 = 'completed' THEN $3 ELSE completed_at END"
    " WHERE id = $4 AND version = $5"
)
# Due jobs, oldest first; rows another worker is claiming right now are skipped, not waited on.
CLAIM_JOBS = (
    "WITH due AS (SELECT id FROM jobs WHERE run_at <= $2 AND (status = 'pending'"
    " OR (status = 'running' AND leased_until < $2)) ORDER BY run_at LIMIT $3"
    " FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs j SET status = 'running', leased_until = $1, attempts = j.attempts + 1"
    " FROM due WHERE j.id = due.id"
    " RETURNING j.id, j.kind, j.session_id, j.run_at, j.attempts, j.last_error"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def split_url(url: str) -> tuple[str, str | None]:
    """``postgresql://...?schema=NAME`` -> (DSN for asyncpg without the option, NAME)."""
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    schema: str | None = None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if schema is not None and not _IDENTIFIER.fullmatch(schema):
        raise ValueError(f"schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*): {schema!r}")
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def affected(status: str) -> int:
    """Rows touched, from a command status such as ``UPDATE 1`` or ``INSERT 0 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def session_params(r: SessionRecord) -> tuple[Any, ...]:
    return (
        r.id, r.flow_id, r.flow_version, r.platform, r.user_id, r.chat_id, r.user_name,
        r.locale, json.dumps(r.context), r.triggered_by, r.status, r.state.model_dump_json(),
        r.version, r.idempotency_key, r.created_at, r.updated_at, r.send_at, r.sent_at,
        r.expires_at, r.completed_at, int(r.reminded), r.error, r.prompted, r.prompt_message_id,
    )  # fmt: skip


def session_from_row(r: Mapping[str, Any]) -> SessionRecord:
    return SessionRecord(
        id=r["id"], flow_id=r["flow_id"], flow_version=r["flow_version"],
        platform=r["platform"], user_id=r["user_id"], chat_id=r["chat_id"],
        user_name=r["user_name"], locale=r["locale"], context=json.loads(r["context"]),
        triggered_by=r["triggered_by"], status=r["status"],
        state=SessionState.model_validate_json(r["state"]), version=r["version"],
        idempotency_key=r["idempotency_key"], created_at=r["created_at"],
        updated_at=r["updated_at"], send_at=r["send_at"], sent_at=r["sent_at"],
        expires_at=r["expires_at"], completed_at=r["completed_at"],
        reminded=bool(r["reminded"]), error=r["error"], prompted=r["prompted"],
        prompt_message_id=r["prompt_message_id"],
    )  # fmt: skip


def answer_params(session_id: str, a: Answer, now: datetime) -> tuple[Any, ...]:
    return (
        session_id, a.question_id, a.question_index, a.metric, a.value, a.option, a.text,
        int(a.skipped), a.scale_min, a.scale_max, now,
    )  # fmt: skip


def job_from_row(r: Mapping[str, Any]) -> Job:
    return Job(
        id=r["id"], kind=r["kind"], session_id=r["session_id"], run_at=r["run_at"],
        attempts=r["attempts"], last_error=r["last_error"],
    )  # fmt: skip


def export_from_row(r: Mapping[str, Any]) -> ExportRow:
    return ExportRow(
        session_id=r["session_id"], flow_id=r["flow_id"], flow_version=r["flow_version"],
        question_id=r["question_id"], metric=r["metric"],
        value=r["value"] if r["value"] is not None else r["option"], text=r["text"],
        platform=r["platform"], user_id=r["user_id"], chat_id=r["chat_id"],
        locale=r["locale"], context=json.loads(r["context"]), triggered_by=r["triggered_by"],
        answered_at=r["answered_at"],
    )  # fmt: skip


def as_utc(value: datetime | str) -> datetime:
    """A datetime from either backend: aware, ISO text with Z or offset, or SQLite's naive
    ``datetime('now')`` text (which is UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def plain(value: Any) -> Any:
    """A report value as SQLite gives it: datetimes as :func:`storage.base.iso` text, numerics
    (``SUM`` of bigint) as int when whole, else float."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
