"""The follow-up figures of detractor alerts, for `surveybot report` and the dashboard: one SQL
text for SQLite and PostgreSQL (``?`` placeholders, numbered for PostgreSQL by
:meth:`storage.dialect.Dialect.sql`; the only expression that differs, seconds between two
times, is :meth:`storage.dialect.Dialect.seconds_between`).

Every alerted negative answer is a row of ``followups``; the report counts those *raised* in the
period (``created_at``, ``since`` inclusive, ``until`` exclusive), of the report's flow and
platform. Two statements, their rows filed under ``section`` like the rest of the report:

- ``followup`` (everyone: one row, ``agent`` NULL, zeros when none was raised) and
  ``followup_agent`` (one row per agent of the survey's context; ``agent`` '' when none was
  recorded): ``negatives`` (rows),
  ``followed`` (an owner is set: someone pressed "I'll follow up"), ``resolved``
  (``resolved_at`` set), ``waits`` (followed up with an ``owned_at``) and ``median_wait``, the
  median of ``owned_at - created_at`` in seconds over those (the mean of the two middle ones
  when their number is even; NULL when there are none), rounded to the millisecond so both
  backends give the same number. Window functions rank the waits, so
  the median is exact on both backends.
- ``followup_open``: the unresolved ones, oldest first (:data:`OPEN_LIMIT` at most), with the
  answer's scale (for "NPS 3/10") and the survey's context (JSON text or, from PostgreSQL, as
  the driver gives it: the ticket id is in it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.dialect import POSTGRES, SQLITE, Dialect, DialectName
from storage.reporting import ReportQuery, Statement, report_sql

OPEN_LIMIT = 100  # unresolved follow-ups listed; the figures count every one

SUMMARY_COLUMNS = "negatives, followed, resolved, waits, median_wait"


def _filters(q: ReportQuery, d: Dialect, params: list[Any]) -> str:
    """The report's period, flow and platform as a WHERE condition on ``followups f``."""
    clauses = ["1 = 1"]
    bounds: list[tuple[str, datetime | None]] = [(">=", q.since), ("<", q.until)]
    for op, moment in bounds:
        if moment is not None:
            clauses.append(f"f.created_at {op} ?")
            params.append(d.time(moment))
    for column, value in (("flow_id", q.flow_id), ("platform", q.platform)):
        if value is not None:
            clauses.append(f"f.{column} = ?")
            params.append(value)
    return " AND ".join(clauses)


def _summary(q: ReportQuery, d: Dialect) -> Statement:
    params: list[Any] = []
    wait = d.seconds_between("f.created_at", "f.owned_at")
    sql = (
        "WITH raised AS MATERIALIZED ("
        " SELECT COALESCE(f.agent, '') AS agent, f.owner AS owner, f.resolved_at AS resolved_at,"
        f" CASE WHEN f.owner IS NOT NULL AND f.owned_at IS NOT NULL THEN {wait} END AS wait"
        f" FROM followups f WHERE {_filters(q, d, params)}),"
        " ranked AS MATERIALIZED ("
        " SELECT agent, wait,"
        " ROW_NUMBER() OVER (PARTITION BY agent ORDER BY wait) AS agent_rank,"
        " COUNT(*) OVER (PARTITION BY agent) AS agent_n,"
        " ROW_NUMBER() OVER (ORDER BY wait) AS all_rank,"
        " COUNT(*) OVER () AS all_n"
        " FROM raised WHERE wait IS NOT NULL),"
        " agent_median AS ("
        " SELECT agent, ROUND(AVG(wait), 3) AS median_wait FROM ranked"
        " WHERE agent_rank IN ((agent_n + 1) / 2, (agent_n + 2) / 2) GROUP BY agent),"
        " all_median AS ("
        " SELECT ROUND(AVG(wait), 3) AS median_wait FROM ranked"
        " WHERE all_rank IN ((all_n + 1) / 2, (all_n + 2) / 2))"
        " SELECT 'followup' AS section, CAST(NULL AS TEXT) AS agent, COUNT(*) AS negatives,"
        " COUNT(owner) AS followed, COUNT(resolved_at) AS resolved, COUNT(wait) AS waits,"
        " (SELECT median_wait FROM all_median) AS median_wait"
        " FROM raised"
        " UNION ALL"
        " SELECT 'followup_agent', r.agent, COUNT(*), COUNT(r.owner), COUNT(r.resolved_at),"
        " COUNT(r.wait), MIN(m.median_wait)"
        " FROM raised r LEFT JOIN agent_median m ON m.agent = r.agent GROUP BY r.agent"
    )
    return Statement("followup", d.sql(sql), tuple(params))


def _open(q: ReportQuery, d: Dialect) -> Statement:
    params: list[Any] = []
    where = _filters(q, d, params)
    params.append(OPEN_LIMIT)
    sql = (
        "SELECT 'followup_open' AS section, f.id AS id, f.flow_id AS flow_id,"
        " f.question_id AS question_id, f.metric AS metric, f.score AS score,"
        " a.scale_min AS scale_min, a.scale_max AS scale_max, f.platform AS platform,"
        " f.user_id AS user_id, f.user_name AS user_name, f.agent AS agent,"
        " f.context AS context, f.created_at AS created_at, f.owner AS owner,"
        " f.owned_at AS owned_at"
        " FROM followups f"
        " LEFT JOIN answers a ON a.session_id = f.session_id AND a.question_id = f.question_id"
        f" WHERE f.resolved_at IS NULL AND {where}"
        " ORDER BY f.created_at, f.id LIMIT ?"
    )
    return Statement("followup_open", d.sql(sql), tuple(params))


def followup_sql(query: ReportQuery, dialect: DialectName) -> list[Statement]:
    """The follow-up statements of a report (independent of each other and of the rest)."""
    d = SQLITE if dialect == "sqlite" else POSTGRES
    return [_summary(query, d), _open(query, d)]


def report_statements(query: ReportQuery, dialect: DialectName) -> list[Statement]:
    """Every statement of a report: :func:`storage.reporting.report_sql` (answers first, the
    heaviest) and the follow-up figures. What :meth:`storage.base.Storage.report_rows` runs."""
    return [*report_sql(query, dialect), *followup_sql(query, dialect)]
