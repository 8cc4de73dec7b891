"""Seed N answers (default 1,000,000, about 730,000 surveys over a year) straight into a fresh
SQLite database built by the project's migrations, then time what `surveybot report` does over
them (every section: scores, trend, distributions, response, drop-off, comments; the table
rendered): plain, segmented by agent, and for half a year with the previous half to compare;
once with the comment themes (what the dashboard adds: the newest 200,000 comments).
Prints answers/s and, as the last line, the slowest report's time over a floor measured in the
same run on the same database: one plain scan, ``SELECT COUNT(*), SUM(value) FROM answers``.

    python bench/report_bench.py [--answers 1000000] [--by agent] [--keep DIR]

Target (issue 6): the report under 5 s for 1,000,000 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import aiosqlite
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.reports.build import build_report  # noqa: E402
from bot.reports.format import render_table  # noqa: E402
from bot.reports.page import render_html  # noqa: E402
from bot.survey.loader import FlowRegistry  # noqa: E402
from storage.reporting import ReportQuery, SegmentBy  # noqa: E402
from storage.sqlite.backend import SQLiteStorage  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 364
FLOWS = (
    ("csat", "satisfied", "csat", 0, 1),
    ("nps", "score", "nps", 0, 10),
    ("ces", "effort", "ces", 1, 7),
)
AGENTS = [f"agent-{i}" for i in range(12)]
TARGET = 5.0  # seconds, issue 6


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


SESSION_COLUMNS = (
    "id", "flow_id", "flow_version", "platform", "user_id", "locale", "context", "triggered_by",
    "status", "state", "version", "created_at", "updated_at", "sent_at", "completed_at",
    "reminded", "prompted",
)  # fmt: skip
ANSWER_COLUMNS = (
    "session_id", "question_id", "question_index", "metric", "value", "text", "skipped",
    "scale_min", "scale_max", "answered_at",
)  # fmt: skip


def seed_rows(
    answers: int, rng: random.Random
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(session, its answers): 90% of sessions answered (a score, and for 40% a comment),
    the rest expired or still waiting at the first question; a year of answers."""
    made = 0
    i = 0
    while made < answers:
        flow_id, qid, metric, lo, hi = FLOWS[i % 3]
        at = START + timedelta(seconds=rng.randrange(DAYS * 86400))
        status = "completed" if rng.random() < 0.9 else rng.choice(("expired", "active"))
        context = {"agent": rng.choice(AGENTS), "ticket_id": str(100000 + i)}
        answer_rows: list[dict[str, Any]] = []
        if status == "completed":
            value = rng.randint(lo, hi)
            score = {"question_id": qid, "question_index": 0, "metric": metric, "value": value}
            answer_rows.append({**score, "scale_min": lo, "scale_max": hi, "at": at})
            if rng.random() < 0.4 and made + 1 < answers:
                answer_rows.append({"question_id": "comment", "question_index": 1,
                                    "metric": "text", "text": f"comment {i}",
                                    "at": at + timedelta(seconds=30)})  # fmt: skip
        sid = f"s{i:011d}"
        state = {"locale": "en", "context": context, "current": None, "asked": 2,
                 "answers": {a["question_id"]: a.get("value", a.get("text"))
                             for a in answer_rows}}  # fmt: skip
        sent = iso(at - timedelta(minutes=5))
        session = {
            "id": sid, "flow_id": flow_id, "flow_version": "v1",
            "platform": rng.choice(("telegram", "slack")), "user_id": f"u{i}",
            "locale": rng.choice(("en", "el", "lt")), "context": json.dumps(context),
            "triggered_by": "bench", "status": status, "state": json.dumps(state),
            "version": 1 + len(answer_rows), "created_at": sent, "updated_at": sent,
            "sent_at": sent, "completed_at": iso(at) if answer_rows else None, "reminded": 0,
            "prompted": max(0, len(answer_rows) - 1),
        }  # fmt: skip
        rows = [
            {"session_id": sid, "value": None, "text": None, "skipped": 0, "scale_min": None,
             "scale_max": None, **{k: v for k, v in a.items() if k != "at"},
             "answered_at": iso(a["at"])}
            for a in answer_rows
        ]  # fmt: skip
        made += len(rows)
        i += 1
        yield session, rows


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def seed(path: Path, answers: int) -> tuple[int, int, float]:
    """Migrate a new database with the project's migrations, then one transaction of
    executemany: returns (answers, sessions, seconds)."""
    asyncio.run(_migrate(path))
    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    rng = random.Random(6)
    sessions: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    for session, answer_rows in seed_rows(answers, rng):
        sessions.append(tuple(session[c] for c in SESSION_COLUMNS))
        rows.extend(tuple(a[c] for c in ANSWER_COLUMNS) for a in answer_rows)
    db.execute("BEGIN")
    db.executemany(_insert("sessions", SESSION_COLUMNS), sessions)
    db.executemany(_insert("answers", ANSWER_COLUMNS), rows)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return len(rows), len(sessions), time.perf_counter() - started


async def _migrate(path: Path) -> None:
    storage = SQLiteStorage(f"sqlite:///{path}")
    await storage.open()
    await storage.close()


async def _floor(uri: str) -> tuple[float, int]:
    """The plainest full scan of the answers, on a connection like the report's."""
    async with aiosqlite.connect(uri, uri=True) as db:
        started = time.perf_counter()
        async with db.execute("SELECT COUNT(*), SUM(value) FROM answers") as cur:
            row = await cur.fetchone()
        assert row is not None
        return time.perf_counter() - started, int(row[0])


async def _timed(storage: SQLiteStorage, query: ReportQuery, registry: FlowRegistry) -> float:
    """Seconds for what `surveybot report` does after start-up, the report and its table: the
    median of three runs (the machine may be shared)."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        report = await build_report(storage, query, registry)
        render_table(report, Console(file=io.StringIO(), width=140), comments=True)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


async def timed_reports(path: Path, by: SegmentBy) -> dict[str, float]:
    registry = FlowRegistry(ROOT / "flows")
    registry.load_all()
    storage = SQLiteStorage(f"sqlite:///{path}")
    await storage.open()
    try:
        floor, answers = await _floor(path.as_uri() + "?mode=ro")
        everything = await build_report(storage, ReportQuery(by=by), registry)
        counted = sum(d.n for d in everything.distributions) + sum(
            q.answered for q in everything.questions if q.metric == "text"
        )
        assert counted == answers, f"{counted} answers reported, {answers} stored"
        half_year = ReportQuery(by=by, since=START + timedelta(days=DAYS // 2),
                                until=START + timedelta(days=DAYS))  # fmt: skip
        started = time.perf_counter()
        render_html(everything)
        charts = time.perf_counter() - started
        started = time.perf_counter()
        themed = await build_report(storage, ReportQuery(themes=True), registry)
        themes = time.perf_counter() - started
        comments = sum(t.negative_comments + t.positive_comments for t in themed.themes)
        print(f"report --themes (every comment, {comments:,} on the two sides): {themes:.2f} s")
        return {
            "floor": floor,
            "charts": charts,
            "report": await _timed(storage, ReportQuery(), registry),
            f"report --by {by}": await _timed(storage, ReportQuery(by=by), registry),
            f"report --by {by} --since/--until (half a year, and the half before)": await _timed(
                storage, half_year, registry
            ),
        }
    finally:
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--by", default="agent", choices=list(get_args(SegmentBy)))
    parser.add_argument("--keep", type=Path, help="keep the database in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = ((args.keep or Path(tmp)) / "report_bench.db").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        answers, sessions, seconds = seed(path, args.answers)
        print(f"seeded {answers:,} answers of {sessions:,} surveys in {seconds:.1f} s")
        times = asyncio.run(timed_reports(path, args.by))
        floor, charts = times.pop("floor"), times.pop("charts")
        print(f"floor, SELECT COUNT(*), SUM(value) FROM answers: {floor:.3f} s"
              f" = {answers / floor:,.0f} answers/s")  # fmt: skip
        for name, took in times.items():
            verdict = "under" if took < TARGET else "OVER"
            print(f"{name}: {took:.2f} s = {answers / took:,.0f} answers/s"
                  f" ({verdict} the {TARGET:.0f} s target)")  # fmt: skip
        print(f"dashboard page on top of a report (6 charts, HTML): {charts:.2f} s")
        slowest = max(times.values())
        print(f"slowest report / floor: {slowest / floor:.1f}")


if __name__ == "__main__":
    main()
