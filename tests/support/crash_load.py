"""kill -9 under load, on any platform: a crowd of customers answers the NPS survey through the
real `surveybot run` (a subprocess, SQLite) and a fake platform; the process is killed with
SIGKILL in the middle of the load and started again, and every customer carries on without
sending anything twice (the platform keeps what the bot never acknowledged).

A customer starts the survey, taps a score, types a comment and waits for the thanks. What they
were *told* is what the bot showed them: the score is acknowledged by the next question, the
comment by the thanks. Afterwards (:func:`nothing_lost`, on `surveybot export`): every answer a
customer was told about is stored, once (one row per session and question), nothing else is
stored, and every customer got the thanks (no one is stranded).

A platform plugs in as a :class:`Platform` (how a customer acts, what the bot showed them, how
to tell that a new `surveybot run` serves). Every wait is bounded by :class:`Patience`: the
whole run has a deadline, and when nobody has moved for ``STALL`` seconds every customer stops
waiting and is reported with their last step. The kill waits for ``kill_after`` acknowledged
answers *or* for every customer to be done or stuck, so it fires even when customers fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.survey.flow import localize
from bot.survey.loader import FlowRegistry
from storage.sqlite.backend import SQLiteStorage
from tests.conftest import SHIPPED_FLOWS
from tests.support.console_script import SURVEYBOT, stop

T = TypeVar("T")
JSON = dict[str, Any]
Answer = tuple[str, str, object]  # (user id, question id, score or comment)

DEADLINE = 240.0  # seconds the whole load may take at most: a failure detector, never asserted
STALL = 60.0  # seconds without any customer moving: the rest are stranded, stop waiting
STEP = 120.0  # seconds one platform action may wait (e.g. for the app to be back): a bound
STARTUP = 60.0  # seconds a cold `surveybot run` (imports, migrations, connecting) may take
TICK = 0.02  # seconds between looks at what the fake platform saw


class Platform(Protocol):
    """Customers on one platform, acting through its fake. ``who`` is the platform's user id."""

    name: str

    def serving(self) -> int:
        """Grows each time a `surveybot run` starts serving (for :meth:`Installation.start`)."""

    async def start(self, who: str) -> None:
        """The NPS survey is started for ``who`` the way this platform starts one."""

    def question(self, who: str) -> JSON | None:
        """The survey's first question (with its buttons) as ``who`` sees it, if it came."""

    async def tap(self, who: str, question: JSON, label: str) -> None:
        """``who`` taps the button ``label`` of ``question``."""

    async def type(self, who: str, text: str) -> None:
        """``who`` types ``text`` in the chat with the bot."""

    def texts(self, who: str) -> list[str]:
        """What the bot has shown ``who`` so far, oldest first."""


# ---------------------------------------------------------------------------- the flow
@dataclass(frozen=True)
class Nps:
    """What customers expect from flows/nps.yaml (in English)."""

    question: str
    follow_ups: dict[str, str]  # question id -> text
    thanks: str

    @staticmethod
    def load() -> Nps:
        registry = FlowRegistry(SHIPPED_FLOWS)
        registry.load_all()
        flow = registry.get("nps")
        assert flow is not None and flow.thanks is not None

        def en(text: Any) -> str:
            return str(localize(text, "en", flow.fallback))

        score, *reasons = flow.questions
        return Nps(en(score.text), {q.id: en(q.text) for q in reasons}, en(flow.thanks))

    @staticmethod
    def follow_up_for(score: int) -> str:
        """The question flows/nps.yaml asks after ``score``."""
        return "detractor_reason" if score <= 6 else "passive_reason" if score <= 8 else (
            "promoter_reason")  # fmt: skip


# ---------------------------------------------------------------------------- customers
@dataclass
class Customer:
    who: str
    score: int
    comment: str
    step: str = "waiting for a free slot"
    told: list[Answer] = field(default_factory=list)  # answers the bot acknowledged to them

    @property
    def thanked(self) -> bool:
        return self.step == "thanked"


def crowd(ids: Sequence[str]) -> list[Customer]:
    """Customers with scores 0–10 in turn, each with a comment of their own."""
    return [Customer(who, n % 11, f"Comment {n} from {who}: quick and friendly.")
            for n, who in enumerate(ids)]  # fmt: skip


@dataclass
class Patience:
    """How long anyone waits: until ``DEADLINE`` after the start, and never more than ``STALL``
    seconds after the last time some customer moved on."""

    began: float = field(default_factory=time.monotonic)
    moved_at: float = field(default_factory=time.monotonic)

    def moved(self) -> None:
        self.moved_at = time.monotonic()

    @property
    def exhausted(self) -> bool:
        now = time.monotonic()
        return now - self.began > DEADLINE or now - self.moved_at > STALL

    async def until(self, check: Callable[[], T | None]) -> T | None:
        """``check()`` once it is truthy; None when patience ran out first."""
        while not (found := check()):
            if self.exhausted:
                return None
            await asyncio.sleep(TICK)
        return found


async def answer_nps(platform: Platform, nps: Nps, customer: Customer, patience: Patience) -> None:
    """One customer, start to thanks; stops (leaving ``step`` where it got) when patience runs
    out. Nothing is ever sent twice."""
    who = customer.who
    customer.step = "started the survey"
    await platform.start(who)
    question = await patience.until(lambda: platform.question(who))
    if question is None:
        return
    customer.step = "tapped a score"
    await platform.tap(who, question, str(customer.score))
    reason = Nps.follow_up_for(customer.score)
    if not await patience.until(lambda: _shown(platform, who, nps.follow_ups[reason])):
        return
    customer.told.append((who, "score", customer.score))
    patience.moved()
    customer.step = "typed a comment"
    await platform.type(who, customer.comment)
    if not await patience.until(lambda: _shown(platform, who, nps.thanks)):
        return
    customer.told.append((who, reason, customer.comment))
    customer.step = "thanked"
    patience.moved()


def _shown(platform: Platform, who: str, text: str) -> bool:
    return any(text in shown for shown in platform.texts(who))


# ---------------------------------------------------------------------------- the process
@dataclass
class Installation:
    """`surveybot run` in a directory with config.yaml (SQLite in data/, the shipped flows),
    started, killed and stopped by the test; ``env`` is what the admin exports."""

    root: Path
    platform: Platform
    env: dict[str, str]
    runs: int = 0
    process: asyncio.subprocess.Process | None = None

    @classmethod
    def create(
        cls, root: Path, platform: Platform, config: str, env: dict[str, str]
    ) -> Installation:
        shutil.copytree(SHIPPED_FLOWS, root / "flows", ignore=shutil.ignore_patterns("*.py"))
        (root / "data").mkdir()
        (root / "config.yaml").write_text(
            f'flows_dir: flows\nstorage: {{url: "sqlite:///{root}/data/surveys.db"}}\n{config}',
            encoding="utf-8",
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
        return cls(root, platform, clean | env | {"PYTHONUNBUFFERED": "1"})

    @property
    def database(self) -> str:
        return f"sqlite:///{self.root}/data/surveys.db"

    async def start(self) -> None:
        """`surveybot run`, once the platform sees it serving."""
        self.runs += 1
        before = self.platform.serving()
        with (self.root / f"run-{self.runs}.log").open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                SURVEYBOT, "run", "--config", str(self.root / "config.yaml"), cwd=self.root,
                env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP
        while self.platform.serving() <= before:
            alive = self.process.returncode is None
            assert alive and time.monotonic() < deadline, f"no `surveybot run`\n{self.log()}"
            await asyncio.sleep(TICK)

    async def kill9(self) -> None:
        assert self.process is not None and self.process.returncode is None, self.log()
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM (SIGKILL when it does not stop in time)."""
        if self.process is not None:
            await stop(self.process)

    async def export(self) -> list[JSON]:
        """`surveybot export --format jsonl`, one dict a row."""
        proc = await asyncio.create_subprocess_exec(
            SURVEYBOT, "export", "--format", "jsonl", "--config", str(self.root / "config.yaml"),
            cwd=self.root, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), STARTUP)
        assert proc.returncode == 0, err.decode()
        return [json.loads(line) for line in out.decode().splitlines() if line.strip()]

    async def stored(self) -> int:
        """Answers in storage right now (read directly: the process is dead)."""
        storage = SQLiteStorage(self.database)
        await storage.open()
        try:
            return len([row async for row in storage.export_rows()])
        finally:
            await storage.close()

    def held_for(self, who: str) -> str:
        """What storage holds for ``who``: sessions, inbox events, outbox rows (read straight
        from the SQLite file, for a failure message)."""
        queries = {
            "sessions": "SELECT id, status, prompted, error FROM sessions WHERE user_id = ?",
            "inbox": "SELECT event_id, status, attempts, last_error FROM inbox WHERE user_id = ?",
            "outbox": "SELECT kind, status, attempts, last_error FROM outbox WHERE user_id = ?",
        }
        with closing(sqlite3.connect(self.root / "data" / "surveys.db")) as db:
            return "; ".join(f"{table} {db.execute(sql, (who,)).fetchall()}"
                             for table, sql in queries.items())  # fmt: skip

    def log(self, lines: int = 40) -> str:
        """The end of every run's log."""
        parts = []
        for run in range(1, self.runs + 1):
            text = (self.root / f"run-{run}.log").read_text(encoding="utf-8", errors="replace")
            parts.append(f"--- run {run}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)


# ---------------------------------------------------------------------------- the load
@dataclass
class Figures:
    platform: str
    customers: int
    concurrency: int
    kill_after: int
    told_at_kill: int = 0  # answers customers had been told about when the process died
    stored_at_kill: int = 0  # answers in storage when the process died
    told: int = 0
    stored: int = 0
    killed_at: float = 0.0  # seconds from the first customer to the kill
    back_after: float = 0.0  # seconds from the kill until the new process served
    seconds: float = 0.0  # from the first customer to the last thanks (printed, never asserted)

    def __str__(self) -> str:
        return (
            f"{self.platform}: {self.customers} customers, {self.concurrency} at a time; "
            f"kill -9 at {self.killed_at:.1f} s (after {self.kill_after} acknowledged answers): "
            f"{self.told_at_kill} told, {self.stored_at_kill} stored; serving again "
            f"{self.back_after:.1f} s later; at the end {self.told} told, {self.stored} stored; "
            f"{self.seconds:.1f} s in all"
        )


async def load_with_kill_9(
    site: Installation, customers: Sequence[Customer], concurrency: int, kill_after: int
) -> Figures:
    """Run the crowd, ``concurrency`` at a time, against ``site``; kill -9 the process once
    ``kill_after`` answers were acknowledged (or every customer is done or stuck), start it
    again, and let everyone finish (or run out of patience)."""
    nps, gate = Nps.load(), asyncio.Semaphore(concurrency)
    figures = Figures(site.platform.name, len(customers), concurrency, kill_after)

    def told() -> int:
        return sum(len(c.told) for c in customers)

    async def one(customer: Customer) -> None:
        async with gate:
            if not patience.exhausted:
                await answer_nps(site.platform, nps, customer, patience)

    await site.start()
    began = time.monotonic()
    patience = Patience()
    tasks = [asyncio.create_task(one(c)) for c in customers]
    try:
        await patience.until(lambda: told() >= kill_after or all(t.done() for t in tasks))
        figures.told_at_kill, figures.killed_at = told(), time.monotonic() - began
        await site.kill9()
        figures.stored_at_kill = await site.stored()
        await site.start()
        figures.back_after = time.monotonic() - began - figures.killed_at
        patience.moved()  # the restart is not the customers' stall
        await asyncio.wait(tasks, timeout=DEADLINE)  # patience ends every wait sooner
        figures.seconds = time.monotonic() - began
    finally:
        for task in tasks:
            task.cancel()
        errors = await asyncio.gather(*tasks, return_exceptions=True)
        await site.stop()
    failed = [e for e in errors if isinstance(e, Exception)]
    assert not failed, f"a customer's step failed: {failed[0]!r}\n{site.log()}"
    figures.told = told()
    return figures


def nothing_lost(site: Installation, customers: Sequence[Customer], rows: Sequence[JSON]) -> None:
    """Every acknowledged answer exported once, nothing else, every customer thanked; the
    message names each customer concerned and what they last did and saw."""
    told = {a for c in customers for a in c.told}
    exported = [(r["user_id"], r["question_id"], r["value"] if r["text"] is None else r["text"])
                for r in rows]  # fmt: skip
    doubled = [k for k, n in Counter((r["session_id"], r["question_id"]) for r in rows).items()
               if n > 1]  # fmt: skip
    sessions: dict[str, set[str]] = {}
    for r in rows:
        sessions.setdefault(r["user_id"], set()).add(r["session_id"])
    two_surveys = sorted(who for who, ids in sessions.items() if len(ids) > 1)
    lost = sorted(told - set(exported), key=str)
    untold = sorted(set(exported) - told, key=str)
    stranded = [c for c in customers if not c.thanked]

    def story(who: str) -> str:
        c = next(c for c in customers if c.who == who)
        mine = [r["question_id"] for r in rows if r["user_id"] == who]
        return (f"{who}: {c.step}; bot showed {site.platform.texts(who)}; answers {mine}; "
                f"{site.held_for(who)}")  # fmt: skip

    problems = [
        *(f"lost (told, not stored): {a}" for a in lost),
        *(f"doubled (session, question): {k}" for k in doubled),
        *(f"more than one survey: {who}" for who in two_surveys),
        *(f"stored, never told: {a}" for a in untold),
        *(f"stranded: {story(c.who)}" for c in stranded[:20]),
    ]
    summary = (f"{len(lost)} lost, {len(doubled)} doubled, {len(stranded)} stranded, "
               f"{len(untold)} stored but never told")  # fmt: skip
    assert not problems, summary + "\n" + "\n".join(problems[:60]) + "\n" + site.log()
