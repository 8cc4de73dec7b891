"""The database schema, written once as data and rendered per dialect.

Every table, column and index is declared here with the number of the migration that added it
(``since``). :func:`migration` renders migration N for a dialect: ``CREATE TABLE`` for the
tables added by N (with the columns they had then), ``ALTER TABLE ... ADD COLUMN`` for columns
N added to older tables, ``CREATE INDEX`` for N's indexes. So a new database and an old one
brought forward end with the same schema, and ``PRAGMA user_version`` (SQLite) or the rows of
``schema_migrations`` (PostgreSQL) keep counting as before. To change the schema: add the
table, column or index with ``since=LATEST + 1`` and bump :data:`LATEST`. Anything this cannot
express (a data fix, a dropped column) goes in :data:`EXTRA` as SQL for each dialect.

How each dialect spells a type, a placeholder or a row lock is :mod:`storage.dialect`.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.dialect import ColumnType, Dialect, DialectName

LATEST = 3  # the number of the newest migration


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "text"
    null: bool = False
    default: str | None = None  # an SQL literal valid in both dialects: 0, 'pending'
    now_default: bool = False  # PostgreSQL fills it with now(); SQLite inserts write it
    primary: bool = False  # a one-column primary key (a counter always is)
    unique: bool = False
    references: str | None = None  # e.g. "sessions (id) ON DELETE CASCADE"
    since: int = 1


@dataclass(frozen=True)
class Index:
    name: str
    columns: str  # "platform, user_id, status"
    unique: bool = False
    where: str | None = None  # a partial index, same text in both dialects
    since: int = 1


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()  # a composite key
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = ()
    since: int = 1

    def names(self, *, since: int | None = None) -> list[str]:
        return [c.name for c in self.columns if since is None or c.since <= since]

    @property
    def column_list(self) -> str:
        """Every column, comma-separated, in declaration order (row mappers rely on it)."""
        return ", ".join(self.names())


_c = Column


FLOW_VERSIONS = Table(
    "flow_versions",
    (_c("flow_id"), _c("version"), _c("definition"), _c("created_at", "time", now_default=True)),
    primary_key=("flow_id", "version"),
)
SESSIONS = Table(
    "sessions",
    (
        _c("id", primary=True), _c("flow_id"), _c("flow_version"), _c("platform"),
        _c("user_id"), _c("chat_id", null=True), _c("user_name", null=True), _c("locale"),
        _c("context", "json"), _c("triggered_by"), _c("status"), _c("state", "json"),
        _c("version", "int"), _c("idempotency_key", null=True, unique=True),
        _c("created_at", "time"), _c("updated_at", "time"), _c("send_at", "time", null=True),
        _c("sent_at", "time", null=True), _c("expires_at", "time", null=True),
        _c("completed_at", "time", null=True), _c("reminded", "int", default="0"),
        _c("error", null=True), _c("prompted", "int", null=True),
        _c("prompt_message_id", null=True),
        # 2: the Slack thread (root ts) or Telegram forum topic the survey is asked in
        _c("thread_id", null=True, since=2),
    ),
    indexes=(
        Index("sessions_addressee", "platform, user_id, status"),
        Index("sessions_flow", "flow_id, created_at"),
    ),
)  # fmt: skip
ANSWERS = Table(
    "answers",
    (
        _c("session_id", references="sessions (id) ON DELETE CASCADE"), _c("question_id"),
        _c("question_index", "int"), _c("metric"), _c("value", "int", null=True),
        _c("option", null=True), _c("text", null=True), _c("skipped", "int"),
        _c("scale_min", "int", null=True), _c("scale_max", "int", null=True),
        _c("answered_at", "time"),
    ),
    primary_key=("session_id", "question_id"),
    indexes=(Index("answers_time", "answered_at"),),
)  # fmt: skip
PROCESSED_EVENTS = Table(
    "processed_events", (_c("event_id", primary=True), _c("processed_at", "time"))
)
INVITES = Table(
    "invites",
    (_c("token", primary=True), _c("flow_id"), _c("context", "json"),
     _c("created_at", "time"), _c("used_at", "time", null=True)),
)  # fmt: skip
JOBS = Table(
    "jobs",
    (
        _c("id", "counter"), _c("kind"), _c("session_id"), _c("run_at", "time"),
        _c("status", default="'pending'"), _c("attempts", "int", default="0"),
        _c("leased_until", "time", null=True), _c("last_error", null=True),
    ),
    unique=(("kind", "session_id"),),
    indexes=(Index("jobs_due", "status, run_at"),),
)  # fmt: skip
# 2: the durable inbox (raw platform events, stored before the platform is acknowledged) and
# outbox (messages owed to customers, committed with the state change that owes them).
INBOX = Table(
    "inbox",
    (
        _c("id", "counter"), _c("platform"), _c("event_id"), _c("key"),
        _c("user_id", null=True), _c("payload"), _c("received_at", "time"),
        _c("status", default="'pending'"), _c("attempts", "int", default="0"),
        _c("next_attempt_at", "time"), _c("lease_until", "time", null=True),
        _c("last_error", null=True), _c("done_at", "time", null=True),
    ),
    unique=(("platform", "event_id"),),
    indexes=(
        Index("inbox_pending", "platform, key, id", where="status = 'pending'", since=2),
        Index("inbox_status", "status, done_at", since=2),
        Index("inbox_user", "platform, user_id", since=2),
    ),
    since=2,
)  # fmt: skip
OUTBOX = Table(
    "outbox",
    (
        _c("id", "counter"), _c("session_id", null=True), _c("platform"), _c("user_id"),
        _c("chat"), _c("address", "json"), _c("lane"), _c("kind"), _c("body", "json"),
        _c("created_at", "time"), _c("status", default="'pending'"),
        _c("attempts", "int", default="0"), _c("next_attempt_at", "time"),
        _c("lease_until", "time", null=True), _c("sent_at", "time", null=True),
        _c("platform_message_id", null=True), _c("last_error", null=True),
    ),
    indexes=(
        Index("outbox_pending", "chat, status, id", where="status = 'pending'", since=2),
        Index("outbox_status", "status, id", since=2),
        Index("outbox_user", "platform, user_id", since=2),
    ),
    since=2,
)  # fmt: skip
# 3: one row per alerted answer (a detractor alert and its follow-up), see docs/alerts.md
FOLLOWUPS = Table(
    "followups",
    (
        _c("id", "counter"), _c("session_id", references="sessions (id) ON DELETE CASCADE"),
        _c("question_id"), _c("flow_id"), _c("platform"), _c("user_id"),
        _c("user_name", null=True), _c("agent", null=True), _c("metric"),
        _c("score", "int", null=True), _c("scale_max", "int", null=True),
        _c("context", "json"), _c("destination"), _c("locale"), _c("created_at", "time"),
        _c("comment", null=True), _c("message_id", null=True), _c("owner", null=True),
        _c("owner_name", null=True), _c("owned_at", "time", null=True),
        _c("resolved_by", null=True), _c("resolved_by_name", null=True),
        _c("resolved_at", "time", null=True), _c("note", null=True),
        # a token each change writes: the outbox rows queued with it are guarded by it
        _c("change_id", null=True),
    ),
    unique=(("session_id", "question_id"),),
    indexes=(
        Index("followups_time", "created_at", since=3),
        Index("followups_open", "created_at", where="resolved_at IS NULL", since=3),
    ),
    since=3,
)  # fmt: skip
TABLES: tuple[Table, ...] = (
    FLOW_VERSIONS, SESSIONS, ANSWERS, PROCESSED_EVENTS, INVITES, JOBS, INBOX, OUTBOX, FOLLOWUPS
)  # fmt: skip
# Hand-written steps a migration runs after the rendered ones: {number: {dialect: sql}}.
EXTRA: dict[int, dict[DialectName, str]] = {}


def column_sql(column: Column, dialect: Dialect) -> str:
    parts = [column.name, dialect.types[column.type]]
    if column.type != "counter":
        if not column.null and not column.primary:  # v1 wrote "id TEXT PRIMARY KEY"
            parts.append("NOT NULL")
        if column.default is not None:
            parts.append(f"DEFAULT {column.default}")
        elif column.now_default and dialect.name == "postgres":
            parts.append("DEFAULT now()")
        if column.primary:
            parts.append("PRIMARY KEY")
        if column.unique:
            parts.append("UNIQUE")
        if column.references:
            parts.append(f"REFERENCES {column.references}")
    return " ".join(parts)


def create_table(table: Table, dialect: Dialect) -> str:
    lines = [column_sql(c, dialect) for c in table.columns if c.since <= table.since]
    if table.primary_key:
        lines.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    lines += [f"UNIQUE ({', '.join(columns)})" for columns in table.unique]
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {table.name} (\n    {body}\n)"


def create_index(table: Table, index: Index) -> str:
    unique = "UNIQUE " if index.unique else ""
    where = f" WHERE {index.where}" if index.where else ""
    return f"CREATE {unique}INDEX {index.name} ON {table.name} ({index.columns}){where}"


def migration(number: int, dialect: Dialect) -> list[str]:
    """The statements of migration ``number`` (1..LATEST) for ``dialect``, in order."""
    statements: list[str] = []
    for table in TABLES:
        if table.since == number:
            statements.append(create_table(table, dialect))
        elif table.since < number:
            statements += [
                f"ALTER TABLE {table.name} ADD COLUMN {column_sql(c, dialect)}"
                for c in table.columns
                if c.since == number
            ]
        statements += [create_index(table, i) for i in table.indexes if i.since == number]
    extra = EXTRA.get(number, {}).get(dialect.name)
    if extra:
        statements.append(extra)
    return statements


def migrations(dialect: Dialect) -> list[list[str]]:
    """Every migration for ``dialect``: item N-1 brings a database to version N."""
    return [migration(number, dialect) for number in range(1, LATEST + 1)]
