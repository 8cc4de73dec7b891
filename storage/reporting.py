"""The SQL behind `surveybot report` and the dashboard, generated per dialect. The database
aggregates; Python only ever sees grouped rows. Four statements:

- ``answers``: one pass over scored and choice answers joined to their sessions, grouped into a
  small "cube" (week, value, metric, segment, flow, question, option, and whether the answer
  is in the period, the previous period, or from a survey sent in the period), rolled up with
  GROUP BY into ``scores``, ``previous``, ``segments``, ``trend``, ``distribution`` and
  ``questions``. Scores come as the aggregates :mod:`bot.survey.scoring` takes: ``n``, CSAT ``top``
  (1 of yes/no; ``value >= scale_max - 1`` of a rating), NPS ``promoters`` (>= 9) and
  ``detractors`` (<= 6), CES ``total``, ``total_sq`` and ``agree`` (>= 5). One pass matters:
  SQLite groups by sorting, and sorting a million rows takes seconds.
- ``unscored``: free-text answers per question (``questions`` rows: completion).
- ``sessions``: ``funnel`` (sent, completed, expired, active per flow), ``funnel_segments``,
  and ``stopped`` (expired or waiting surveys per question they were last asked).
- ``comments``: the newest free-text answers with the first score of the same survey.

Every row carries its ``section``, under which :meth:`storage.base.Storage.report_rows` files
it; the statements are independent (any order, or at once). ``"sqlite"``: ``?1`` placeholders,
ISO text times, full scans forced, small dimensions packed into one sort key. ``"postgres"``:
``$1`` placeholders, datetime parameters, casts that work whether times are ``timestamptz``
or ISO text and ``context`` json or text.

Periods: answers count by ``answered_at``; the funnel and drop-off count the surveys *sent* in
the period (one cohort). ``since`` is inclusive, ``until`` exclusive; the previous period is as
long and ends where this one starts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

Dialect = Literal["sqlite", "postgres"]
SegmentBy = Literal["platform", "agent", "locale", "channel", "week"]
ReportRows = dict[str, list[dict[str, Any]]]
"""What :meth:`storage.base.Storage.report_rows` returns: section -> rows, each row a dict of
the statement's column names (``section`` included) to plain values."""

SCORED = "('csat', 'nps', 'ces')"


class ReportQuery(BaseModel):
    """What to report on. Times are UTC-aware; ``until`` is exclusive. ``now`` ends an open
    period when a previous period has to be measured (``since`` given, ``until`` not)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flow_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    platform: str | None = None
    by: SegmentBy | None = None
    comments: int = Field(default=20, ge=0, le=1000)
    themes: bool = False  # also every comment of the period, for the themes
    now: datetime | None = None

    @property
    def previous(self) -> tuple[datetime, datetime] | None:
        """The period before this one, as long as this one; None without ``since``."""
        if self.since is None:
            return None
        end = self.until or self.now or datetime.now(UTC)
        try:
            return self.since - max(end - self.since, timedelta(0)), self.since
        except OverflowError:  # a period reaching back before year 1: so does the previous one
            return datetime.min.replace(tzinfo=UTC), self.since


class Statement(NamedTuple):
    name: str
    sql: str
    params: tuple[Any, ...]


class _Sql:
    """Placeholders, parameters and the few expressions that differ between backends.
    Placeholders are numbered (``?1`` / ``$1``), so an expression may appear twice."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        if isinstance(value, datetime):
            value = value.astimezone(UTC)
            if self.dialect == "sqlite":  # the format of storage.base.iso: sorts as text
                value = value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.params.append(value)
        return f"{'?' if self.dialect == 'sqlite' else '$'}{len(self.params)}"

    def time(self, column: str) -> str:
        return column if self.dialect == "sqlite" else f"CAST({column} AS timestamptz)"

    def table(self, name: str, alias: str) -> str:
        """A table scanned whole: in SQLite, in storage order (an index scan would jump
        around the table for every row)."""
        return f"{name} {alias} NOT INDEXED" if self.dialect == "sqlite" else f"{name} {alias}"

    def flag(self, column: str) -> str:
        return column if self.dialect == "sqlite" else f"CAST({column} AS INTEGER)"

    def in_range(self, column: str, since: datetime | None, until: datetime | None) -> str:
        """since <= column < until as a condition (either bound may be open)."""
        parts = []
        if since is not None:
            parts.append(f"{self.time(column)} >= {self.param(since)}")
        if until is not None:
            parts.append(f"{self.time(column)} < {self.param(until)}")
        return " AND ".join(parts) or "1 = 1"

    def between(self, column: str, since: datetime | None, until: datetime | None) -> str:
        """The same as a number: 1 when since <= column < until, else 0."""
        condition = self.in_range(column, since, until)
        return "1" if condition == "1 = 1" else f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    def week_key(self, column: str) -> str:
        """A cheap per-row key of the ISO week; :meth:`week_label` turns it into its Monday.
        SQLite: the Julian day number of the date divided by 7 (JDN 0 was a Monday)."""
        if self.dialect == "sqlite":
            return f"(CAST(julianday({column}) + 0.5 AS INTEGER) / 7)"
        return (
            f"to_char(date_trunc('week', CAST({column} AS timestamptz) AT TIME ZONE 'UTC'),"
            " 'YYYY-MM-DD')"
        )

    def week_label(self, key: str) -> str:
        return f"date({key} * 7 - 0.5)" if self.dialect == "sqlite" else key

    def agent(self) -> str:
        if self.dialect == "sqlite":
            return "json_extract(s.context, '$.agent')"
        return "(CAST(s.context AS json) ->> 'agent')"

    def segment(self, by: SegmentBy | None, time_column: str) -> str:
        if by is None:
            return "NULL"
        if by == "week":
            return self.week_key(time_column)
        if by == "channel":  # the group or channel it was asked in; NULL = direct messages
            return "s.chat_id"
        return self.agent() if by == "agent" else f"s.{by}"

    def filters(self, q: ReportQuery) -> str:
        clauses = []
        if q.flow_id is not None:
            clauses.append(f"s.flow_id = {self.param(q.flow_id)}")
        if q.platform is not None:
            clauses.append(f"s.platform = {self.param(q.platform)}")
        return "".join(f" AND {c}" for c in clauses)


# every column of a statement's rows, with the type of its NULL where a part leaves it empty
# (PostgreSQL types the columns of a UNION by their first non-NULL part)
TEXT, NUMBER = "CAST(NULL AS TEXT)", "CAST(NULL AS BIGINT)"
ANSWER_COLUMNS = {
    "section": TEXT, "flow_id": TEXT, "question_id": TEXT, "metric": TEXT, "segment": TEXT,
    "question_index": NUMBER, "scale_min": NUMBER, "scale_max": NUMBER, "value": NUMBER,
    "option": TEXT, "n": NUMBER, "top": NUMBER, "promoters": NUMBER, "detractors": NUMBER,
    "total": NUMBER, "total_sq": NUMBER, "agree": NUMBER, "answered": NUMBER, "skipped": NUMBER,
}  # fmt: skip
TOP = (
    "CASE WHEN a.metric = 'csat' AND (CASE WHEN a.scale_max - a.scale_min <= 1"
    " THEN a.value = a.scale_max ELSE a.value >= a.scale_max - 1 END) THEN 1 ELSE 0 END"
)  # CSAT: yes (1) of yes/no, the top two boxes of a rating
SUMS = {
    "n": "SUM(n)",
    "top": "SUM(top)",
    "promoters": "SUM(CASE WHEN metric = 'nps' AND value >= 9 THEN n ELSE 0 END)",
    "detractors": "SUM(CASE WHEN metric = 'nps' AND value <= 6 THEN n ELSE 0 END)",
    "total": "SUM(value * n)",
    "total_sq": "SUM(value * value * n)",
    "agree": "SUM(CASE WHEN metric = 'ces' AND value >= 5 THEN n ELSE 0 END)",
}


def _rollup(
    section: str,
    where: str,
    group: list[str],
    columns: dict[str, str] | None = None,
    /,
    **given: str,
) -> str:
    """One SELECT over the cube, grouped by ``group``, with every column of ``columns``
    (default ANSWER_COLUMNS): the group's own, those ``given``, else a typed NULL."""
    exprs = {"section": f"'{section}'", **{c: c for c in group}, **given}
    cols = [f"{exprs.get(c, null)} AS {c}" for c, null in (columns or ANSWER_COLUMNS).items()]
    return f"SELECT {', '.join(cols)} FROM cube WHERE {where} GROUP BY {', '.join(group)}"


def _answers(q: ReportQuery, d: _Sql) -> str:
    """Scored and choice answers: a cube, then its rollups."""
    scored = f"(period & 1) = 1 AND metric IN {SCORED} AND skipped = 0 AND value IS NOT NULL"
    score_sums = {**SUMS, "question_index": "MIN(question_index)"}
    base = ["flow_id", "question_id", "metric"]
    previous = q.previous
    # period: bit 1 = answered in the period, 2 = in the previous period, 4 = the session was
    # sent in the period (the drop-off cohort)
    cur = d.between("a.answered_at", q.since, q.until)
    prev = d.between("a.answered_at", *previous) if previous else "0"
    sent = d.between("s.sent_at", q.since, q.until)
    cohort = f"(CASE WHEN s.sent_at IS NULL THEN 0 ELSE {sent} END)"
    # the cube: every dimension a rollup groups by, the rest aggregated
    source = (
        f" FROM {d.table('answers', 'a')} JOIN sessions s ON s.id = a.session_id"
        f" WHERE a.metric IN ('csat', 'nps', 'ces', 'choice')"
        f" AND ({d.in_range('a.answered_at', previous[0] if previous else q.since, q.until)}"
        + (f" OR {d.in_range('s.sent_at', q.since, q.until)})" if q.since or q.until else ")")
        + d.filters(q)
    )
    dims = {
        "week": d.week_key("a.answered_at"), "value": "a.value",
        "metric": "a.metric", "period": f"({cur} + 2 * {prev} + 4 * {cohort})",
        "skipped": d.flag("a.skipped"),
        "segment": "NULL" if q.by == "week" else d.segment(q.by, "a.answered_at"),
        "flow_id": "s.flow_id", "question_id": "a.question_id", "option": "a.option",
    }  # fmt: skip
    aggregates = {
        "n": "COUNT(*)", "top": f"SUM({TOP})", "question_index": "MIN(a.question_index)",
        "scale_min": "MIN(a.scale_min)", "scale_max": "MAX(a.scale_max)",
    }  # fmt: skip
    cube = _sqlite_cube(dims, aggregates, source) if d.dialect == "sqlite" else (
        f"cube AS MATERIALIZED (SELECT {_columns({**dims, **aggregates})}{source}"
        f" GROUP BY {_ordinals(dims)})"
    )  # fmt: skip
    parts = [
        _rollup("scores", scored, base, **score_sums),
        _rollup("trend", scored, [*base, "week"], **score_sums, segment=d.week_label("week")),
        _rollup("distribution", "(period & 1) = 1 AND skipped = 0", [*base, "value", "option"],
                n="SUM(n)", question_index="MIN(question_index)", scale_min="MIN(scale_min)",
                scale_max="MAX(scale_max)"),
        _rollup("questions", "(period & 4) = 4", base, question_index="MIN(question_index)",
                answered="SUM(CASE WHEN skipped = 0 THEN n ELSE 0 END)",
                skipped="SUM(CASE WHEN skipped = 1 THEN n ELSE 0 END)"),
    ]  # fmt: skip
    if previous:
        previous_scored = scored.replace("(period & 1) = 1", "(period & 2) = 2")
        parts.append(_rollup("previous", previous_scored, base, **score_sums))
    if q.by == "week":
        parts.append(
            _rollup("segments", scored, [*base, "week"], **score_sums, segment=d.week_label("week"))
        )
    elif q.by is not None:
        parts.append(_rollup("segments", scored, [*base, "segment"], **score_sums))
    return f"WITH {cube} " + " UNION ALL ".join(parts)


def _columns(exprs: dict[str, str]) -> str:
    return ", ".join(f"{e} AS {c}" for c, e in exprs.items())


def _ordinals(exprs: dict[str, str]) -> str:
    """GROUP BY by position (both dialects), leaving out constant columns."""
    return ", ".join(str(i) for i, e in enumerate(exprs.values(), 1) if e not in ("NULL", "0"))


def _sqlite_cube(dims: dict[str, str], aggregates: dict[str, str], source: str) -> str:
    """SQLite groups by sorting, and a sort costs per column it compares: the small integer
    dimensions go into one key ``k`` (bits, low to high: skipped 1, period 3, metric 2,
    value + 1 4 — scales end at 10 —, then the week) and come apart again for the rollups."""
    metric_code = ("(CASE {} WHEN 'csat' THEN 0 WHEN 'nps' THEN 1 WHEN 'ces' THEN 2"
                   " ELSE 3 END)").format(dims["metric"])  # fmt: skip
    k = (f"(((({dims['week']} * 16 + COALESCE({dims['value']}, -1) + 1) * 4 + {metric_code})"
         f" * 8 + {dims['period']}) * 2 + {dims['skipped']})")  # fmt: skip
    text = {c: dims[c] for c in ("segment", "flow_id", "question_id", "option")}
    packed = {"k": k, **text}
    unpacked = {
        "week": "k / 1024", "value": "NULLIF((k / 64) % 16, 0) - 1",
        "metric": "CASE (k / 16) % 4 WHEN 0 THEN 'csat' WHEN 1 THEN 'nps' WHEN 2 THEN 'ces'"
        " ELSE 'choice' END",
        "period": "(k / 2) % 8", "skipped": "k % 2", **{c: c for c in (*text, *aggregates)},
    }  # fmt: skip
    return (
        f"packed AS MATERIALIZED (SELECT {_columns({**packed, **aggregates})}{source}"
        f" GROUP BY {_ordinals(packed)}), cube AS (SELECT {_columns(unpacked)} FROM packed)"
    )


def _unscored(q: ReportQuery, d: _Sql) -> str:
    """Free-text (and any other unscored) answers count only towards completion per question
    of the sessions sent in the period; a separate statement, so it can run alongside."""
    return (
        "SELECT 'questions' AS section, s.flow_id AS flow_id, a.question_index AS"
        " question_index, MIN(a.question_id) AS question_id, MIN(a.metric) AS metric,"
        f" SUM(1 - {d.flag('a.skipped')}) AS answered, SUM({d.flag('a.skipped')}) AS skipped"
        f" FROM {d.table('answers', 'a')} JOIN sessions s ON s.id = a.session_id"
        " WHERE a.metric NOT IN ('csat', 'nps', 'ces', 'choice') AND s.sent_at IS NOT NULL"
        f" AND {d.in_range('s.sent_at', q.since, q.until)}{d.filters(q)}"
        " GROUP BY s.flow_id, a.question_index"
    )


SESSION_COLUMNS = {
    "section": TEXT, "flow_id": TEXT, "segment": TEXT, "question_index": NUMBER,
    "sent": NUMBER, "completed": NUMBER, "expired": NUMBER, "active": NUMBER,
}  # fmt: skip


def _sessions(q: ReportQuery, d: _Sql) -> str:
    """Sessions sent in the period: sent, completed, expired, waiting per flow (and segment),
    and per question where the unfinished ones stopped."""
    sent = d.in_range("s.sent_at", q.since, q.until)
    seg = d.segment(q.by, "s.sent_at")
    source = (
        f" FROM {d.table('sessions', 's')} WHERE s.sent_at IS NOT NULL AND {sent}{d.filters(q)}"
    )
    dims = {"flow_id": "s.flow_id", "segment": seg, "status": "s.status",
            "prompted": "s.prompted"}  # fmt: skip
    if d.dialect == "sqlite":  # status and prompted packed into one sort key, as in _answers
        codes = {"completed": 1, "expired": 2, "active": 3}
        code = " ".join(f"WHEN '{k}' THEN {v}" for k, v in codes.items())
        k = f"(CASE s.status {code} ELSE 0 END) * 65536 + COALESCE(s.prompted, -1) + 1"
        packed = {"k": k, "segment": seg, "flow_id": "s.flow_id"}
        status = " ".join(f"WHEN {v} THEN '{k}'" for k, v in codes.items())
        unpacked = {"flow_id": "flow_id", "segment": "segment",
                    "status": f"CASE k / 65536 {status} ELSE 'other' END",
                    "prompted": "NULLIF(k % 65536, 0) - 1", "n": "n"}  # fmt: skip
        cube = (
            f"packed AS MATERIALIZED (SELECT {_columns(packed)}, COUNT(*) AS n{source}"
            f" GROUP BY {_ordinals(packed)}), cube AS (SELECT {_columns(unpacked)} FROM packed)"
        )
    else:
        cube = (
            f"cube AS MATERIALIZED (SELECT {_columns(dims)}, COUNT(*) AS n{source}"
            f" GROUP BY {_ordinals(dims)})"
        )
    counts = {
        "sent": "SUM(n)",
        **{
            k: f"SUM(CASE WHEN status = '{k}' THEN n ELSE 0 END)"
            for k in ("completed", "expired", "active")
        },
    }

    parts = [
        _rollup("funnel", "1 = 1", ["flow_id"], SESSION_COLUMNS, **counts),
        _rollup("stopped", "status IN ('expired', 'active') AND prompted IS NOT NULL",
                ["flow_id", "prompted"], SESSION_COLUMNS, question_index="prompted", **counts),
    ]  # fmt: skip
    if q.by is not None:
        label = d.week_label("segment") if q.by == "week" else "segment"
        parts.append(
            _rollup(
                "funnel_segments",
                "1 = 1",
                ["flow_id", "segment"],
                SESSION_COLUMNS,
                **{**counts, "segment": label},
            )
        )
    return f"WITH {cube} " + " UNION ALL ".join(parts)


def _comments(q: ReportQuery, d: _Sql, section: str = "comments", limit: int = 0) -> str:
    """The newest text answers (``limit``, default ``q.comments``), each with the first
    score answered in its session. Many (themes) are read in one scan, not by the time index."""
    first_score = (
        "SELECT MIN(x.question_index) FROM answers x WHERE x.session_id = a.session_id"
        f" AND x.metric IN {SCORED} AND {d.flag('x.skipped')} = 0 AND x.value IS NOT NULL"
    )
    period = d.in_range("a.answered_at", q.since, q.until)
    return (
        f"SELECT '{section}' AS section, a.session_id AS session_id, s.flow_id AS flow_id,"
        " a.question_id AS question_id, a.text AS text, a.answered_at AS answered_at,"
        f" s.platform AS platform, s.locale AS locale, {d.agent()} AS agent,"
        " sc.question_id AS score_question_id, sc.metric AS score_metric,"
        " sc.value AS score_value, sc.scale_min AS score_scale_min,"
        " sc.scale_max AS score_scale_max"
        f" FROM {d.table('answers', 'a') if limit else 'answers a'} JOIN sessions s"
        " ON s.id = a.session_id LEFT JOIN answers sc ON sc.session_id = a.session_id"
        f" AND sc.question_index = ({first_score})"
        f" WHERE a.metric = 'text' AND {d.flag('a.skipped')} = 0 AND a.text IS NOT NULL"
        f" AND {period}{d.filters(q)}"
        f" ORDER BY {d.time('a.answered_at')} DESC, a.session_id"
        f" LIMIT {d.param(limit or q.comments)}"
    )


def report_sql(query: ReportQuery, dialect: Dialect) -> list[Statement]:
    """The statements of a report. Run each (in any order, or concurrently) and file every
    row under its ``section`` column."""
    statements = []
    builders: list[tuple[str, Callable[[ReportQuery, _Sql], str]]] = [
        ("answers", _answers),
        ("unscored", _unscored),
        ("sessions", _sessions),
        ("comments", _comments),
    ]
    if query.themes:  # the newest 200,000 comments at most
        builders.append(("themes", lambda q, d: _comments(q, d, "themes", 200_000)))
    for name, build in builders:
        d = _Sql(dialect)
        sql = build(query, d)
        statements.append(Statement(name, sql, tuple(d.params)))
    return statements
