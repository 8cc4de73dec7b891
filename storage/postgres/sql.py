"""PostgreSQL helpers for storage.postgres.backend: the URL option, command statuses, value
conversions and the statements only PostgreSQL runs. Records <-> rows are shared with SQLite
(:mod:`storage.rows`): asyncpg hands timestamptz back as aware UTC datetimes and ``json``
columns as text, so the records that cross the Storage protocol are exactly SQLite's.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from storage.base import iso
from storage.dialect import POSTGRES
from storage.rows import ANSWER_COLUMNS, SESSION_COLUMNS, placeholders
from storage.schema import ANSWERS, SESSIONS

SESSION_INSERT = POSTGRES.sql(
    f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({placeholders(len(SESSIONS.columns))})"
)
ANSWER_INSERT = POSTGRES.sql(
    f"INSERT INTO answers ({ANSWER_COLUMNS}) VALUES ({placeholders(len(ANSWERS.columns))})"
    " ON CONFLICT DO NOTHING"
)
COMMIT_UPDATE = (
    "UPDATE sessions SET state = $1, status = $2, version = $3, updated_at = $4,"
    " completed_at = CASE WHEN $2 = 'completed' THEN $4 ELSE completed_at END"
    " WHERE id = $5 AND version = $6"
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
