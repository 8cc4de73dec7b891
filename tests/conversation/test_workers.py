"""Acceptance (issue 7, "Done when"): two `surveybot run` workers on one PostgreSQL, fed the same
Telegram events in any split and with duplicates, produce exactly the answers one worker on
SQLite produces when fed each event once.

The test is the load balancer. Both workers run in webhook mode on ports of their own, with the
same secret, a fresh PostgreSQL schema and the fake Bot API (``deliver_updates = False``: the
fake only builds updates). Each customer's updates go to one worker or the other (a random
split seeded per customer, so it is the same whatever order the customers' turns interleave
in); some go to both, at once or one after the other; some taps race each other on one session
at both workers. Scheduled surveys come through the HTTP API of one worker and both dispatchers
poll for them. Then the same script runs against one worker on SQLite, every event delivered
once (a race's winner first), and the two ``surveybot export --format jsonl`` must hold the same
answers. Every wait is bounded polling on something observable; the processes are always
reaped and the schema dropped.

Two things the customers here allow for, both reported on issue 7 rather than asserted:
- a tap that reaches a worker between another worker's commit of that question's answer and
  its record of having sent the next question looks, to the runtime, like a tap after a crash
  that lost the next question (bot/runtime.py, ``_unasked``): that worker acknowledges it
  without the "already answered" alert and sends the next question again. Customers act on
  the first copy, and a race's winner is read from the export; answers are not affected.
- a reply that arrives while the dispatcher is still recording the send of a scheduled
  survey's first question finds no active survey and is dropped. Customers of scheduled
  surveys act once the API shows the survey active (no person types within milliseconds).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.chat import decode_payload
from storage.postgres.backend import PostgresStorage
from tests.conftest import SHIPPED_FLOWS
from tests.fakes.telegram_api import FakeTelegram, FakeUser
from tests.platforms.telegram.test_telegram_run import free_port
from tests.support.console_script import stop
from tests.support.storage_backends import postgres_url

JSONDict = dict[str, Any]
Row = tuple[str, str, object, object, str, str]  # flow, question, value, text, user, locale
SURVEYBOT = str(Path(sys.executable).parent / "surveybot")
SECRET = "workers-Secret_7"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SEED = 7
STARTUP = 60.0  # seconds a cold start (imports, migrations) may take on a slow machine
WAIT = 30.0  # seconds any one observable step may take
TOTAL = 420.0  # the whole test


# ---- the installation and its workers ----------------------------------------------------------
@dataclass
class Worker:
    name: str
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hook(self) -> str:
        return f"{self.url}/telegram/webhook"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class Site:
    """config.yaml and flows/ in ``root``; every worker gets the same environment but for its
    port and webhook URL (docs/scaling-out.md, "Two workers on one machine")."""

    def __init__(self, root: Path, fake: FakeTelegram, storage_url: str) -> None:
        self.root, self.fake = root, fake
        shutil.copytree(SHIPPED_FLOWS, root / "flows")
        (root / "config.yaml").write_text(
            "flows_dir: flows\n"
            'storage: {url: "sqlite:///data/surveys.db"}\n'
            "staff: {telegram: []}\n"
            "telegram: {mode: webhook}\n"
            "server: {host: 127.0.0.1}\n",
            encoding="utf-8",
        )
        (root / "data").mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
        self.env |= {
            "SURVEYBOT_CONFIG": str(root / "config.yaml"),
            "SURVEYBOT_STORAGE__URL": storage_url,
            "SURVEYBOT_TELEGRAM_TOKEN": fake.token,
            "SURVEYBOT_TELEGRAM__API_BASE_URL": fake.base_url,
            "SURVEYBOT_TELEGRAM_WEBHOOK_SECRET": SECRET,
            # what Telegram is told: the balancer's address (this test, which posts itself)
            "SURVEYBOT_TELEGRAM__WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/telegram/webhook",
        }

    async def command(self, *args: str) -> str:
        """A one-shot `surveybot ...`; its stdout (fails with its stderr)."""
        proc = await asyncio.create_subprocess_exec(
            SURVEYBOT, *args, cwd=self.root, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, f"surveybot {' '.join(args)}: {err.decode()}"
        return out.decode()

    @property
    def _ready_call(self) -> str:
        """What a worker calls once it is about to serve: setWebhook (after setMyCommands),
        or getUpdates in polling mode."""
        polling = self.env.get("SURVEYBOT_TELEGRAM__MODE") == "polling"
        return "getUpdates" if polling else "setWebhook"

    def _up(self, workers: list[Worker], calls_before: int) -> bool:
        calls = len(self.fake.method_calls(self._ready_call)) - calls_before
        return any(w.proc.returncode is not None for w in workers) or calls >= len(workers)

    @asynccontextmanager
    async def workers(self, *names: str) -> AsyncIterator[list[Worker]]:
        """`surveybot run` per name, started together, each on a port of its own and all with
        the balancer's webhook URL. SIGTERM at the end (kill after 30 s); each must stop
        cleanly."""
        started: list[Worker] = []
        before = len(self.fake.method_calls(self._ready_call))
        try:
            for name in names:
                port, log = free_port(), self.root / f"{name}.log"
                with log.open("wb") as out:
                    proc = await asyncio.create_subprocess_exec(
                        SURVEYBOT, "run", cwd=self.root, stdout=out, stderr=out,
                        env=self.env | {"SURVEYBOT_SERVER__PORT": str(port)},
                    )  # fmt: skip
                started.append(Worker(name, port, proc, log))
            await self.fake.wait_for(lambda: self._up(started, before), STARTUP)
            for worker in started:
                assert worker.proc.returncode is None, worker.output()
            yield started
        finally:
            await asyncio.gather(*(_stop(worker) for worker in started))


async def _stop(worker: Worker) -> None:
    if not await stop(worker.proc):
        raise AssertionError(f"{worker.name}: no clean stop\n{worker.output()}")
    assert worker.proc.returncode == 0, f"{worker.name} exited {worker.proc.returncode}\n" + (
        worker.output()
    )


# ---- the load balancer -------------------------------------------------------------------------
@dataclass
class Balancer:
    """Posts Telegram updates to the workers' webhooks as Telegram would (with the secret), each
    POST answered once the worker has handled the update."""

    client: httpx.AsyncClient
    workers: list[Worker]
    posted: Counter[str] = field(default_factory=Counter)
    duplicated: int = 0
    raced: int = 0

    async def post(self, worker: Worker, update: JSONDict) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            response = await self.client.post(
                worker.hook, json=update, headers={SECRET_HEADER: SECRET}
            )
            if response.status_code != 503 or loop.time() > deadline:  # 503: starting up
                break
            await asyncio.sleep(0.05)
        assert response.status_code == 200, f"{worker.name}: {response.status_code}"
        self.posted[worker.name] += 1

    async def deliver(self, update: JSONDict, rng: random.Random) -> None:
        """To one worker; with several, now and then to two (at once, or one after the
        other, as a retry after a lost answer would)."""
        if len(self.workers) == 1:
            await self.post(self.workers[0], update)
            return
        roll = rng.random()
        pair = rng.sample(self.workers, 2)
        if roll < 0.15:
            self.duplicated += 1
            await asyncio.gather(*(self.post(w, update) for w in pair))
        elif roll < 0.3:
            self.duplicated += 1
            for w in pair:
                await self.post(w, update)
        else:
            await self.post(rng.choice(self.workers), update)

    async def both(self, update: JSONDict) -> None:
        """The same update to two workers at once; with one worker, once."""
        await self.race([update] * min(2, len(self.workers)))

    async def race(self, updates: list[JSONDict]) -> None:
        """All at once, each to another worker; with one worker, one after the other."""
        if len(self.workers) == 1:
            for update in updates:
                await self.post(self.workers[0], update)
            return
        self.raced += 1
        await asyncio.gather(
            *(self.post(self.workers[i % len(self.workers)], u) for i, u in enumerate(updates))
        )


# ---- customers ---------------------------------------------------------------------------------
def has_buttons(message: JSONDict) -> bool:
    return bool((message.get("reply_markup") or {}).get("inline_keyboard"))


def button_data(message: JSONDict, value: str) -> str:
    """The callback data of the button that answers ``value`` (yes=1, no=0, skip, 0..10)."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    for data in (b.get("callback_data", "") for row in rows for b in row):
        decoded = decode_payload(data)
        if decoded is not None and decoded[2] == value:
            return str(data)
    raise AssertionError(f"no button for {value!r} in {rows}")


def question_index(message: JSONDict) -> int | None:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    for data in (b.get("callback_data", "") for row in rows for b in row):
        if (decoded := decode_payload(data)) is not None:
            return decoded[1]
    return None


# A customer's turns: (action, the question it answers or None, what it records: a number is
# the value, a string the text). Actions: "tap V" (the button answering V: 1/0 for yes/no, a
# number, skip), "type TEXT", "hint TEXT" (invalid input: the question comes again), "both tap
# V" / "both type TEXT" (the same update to both workers at once), "race V W" (two taps on one
# question at once, one per worker: the winner's value is recorded).
Turn = tuple[str, str | None, int | str | None]


@dataclass
class Customer:
    """One customer's private chat: acts through the balancer, reads what the bot sent."""

    fake: FakeTelegram
    lb: Balancer
    user: FakeUser
    flow: str
    locale: str
    expected: list[Row]
    winners: dict[str, str]  # customer -> the value of their race's winning tap
    races: dict[str, list[str]]  # customer -> the values of their racing taps
    rng: random.Random = field(init=False)
    reasks: int = 0  # questions asked again after invalid input
    seen: int = 0  # the bot message acted on last
    last_question: str | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{SEED}-{self.uid}")  # the same split in every interleaving

    @property
    def uid(self) -> str:
        return str(self.user.id)

    def bot_messages(self) -> list[JSONDict]:
        return [s for s in self.fake.sent if s["chat_id"] == self.user.id]

    async def next_message(self, question: bool) -> JSONDict:
        """The next question (not a second copy of the one just answered: see the module's
        docstring), or the closing message."""
        message: JSONDict = await self.fake.wait_for(
            lambda: next((m for m in self.bot_messages() if m["message_id"] > self.seen
                          and has_buttons(m) == question and m["text"] != self.last_question),
                         None),
            WAIT,
        )  # fmt: skip
        self.seen, self.last_question = message["message_id"], message["text"]
        return message

    async def start(self) -> None:
        """A deep link ``https://t.me/<bot>?start=<flow>``: /start in the private chat."""
        await self.lb.deliver(self.fake.send_text(self.user, f"/start {self.flow}"), self.rng)

    async def answer(self, turns: list[Turn], survey: str | None = None) -> None:
        """Take the turns; ``survey``: the API URL of a scheduled survey, whose first question
        the dispatcher sends on its own: its turn is over once the survey shows as active."""
        question = await self.next_message(question=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while survey and (await self.lb.client.get(survey)).json()["status"] != "active":
            assert loop.time() < deadline, f"{survey} never became active"
            await asyncio.sleep(0.01)
        for i, (action, question_id, recorded) in enumerate(turns):
            verb, _, what = action.partition(" ")
            if verb == "race":
                won = await self.race(question, what.split())
                recorded = None if won is None else int(won)  # None: settled after the run
            elif verb == "both":
                how, _, what = what.partition(" ")
                await self.lb.both(self.update(question, how, what))
            else:
                self.reasks += verb == "hint"
                await self.lb.deliver(self.update(question, verb, what), self.rng)
            if question_id is not None:
                text = recorded if isinstance(recorded, str) else None
                value = None if text is not None else recorded
                self.expected.append((self.flow, question_id, value, text, self.uid, self.locale))
            question = await self.next_message(question=i < len(turns) - 1)

    def update(self, question: JSONDict, verb: str, what: str) -> JSONDict:
        if verb == "tap":
            return self.fake.tap(self.user, question, button_data(question, what))
        return self.fake.send_text(self.user, what)

    async def race(self, question: JSONDict, values: list[str]) -> str | None:
        """Two taps at once, one per worker (a double tap, two devices); both are answered.
        Which one counts shows in the export of the PostgreSQL run (see ``settle_races``);
        the SQLite run gets that winner first, and its one worker tells the second tap that
        the question has its answer. The winner when known, else None."""
        self.races[self.uid] = values
        won = self.winners.get(self.uid)
        taps = [self.update(question, "tap", v) for v in values]
        if won is not None and won != values[0]:
            taps = taps[::-1]
        await self.lb.race(taps)
        ids = [t["callback_query"]["id"] for t in taps]
        answers = await self.fake.wait_for(
            lambda: len(found := {a["callback_query_id"]: a for a in self.fake.callback_answers
                                  if a["callback_query_id"] in ids}) == 2 and found,
            WAIT,
        )  # fmt: skip
        if won is not None:
            assert [answers[i]["show_alert"] for i in ids] == [False, True], answers
        return won


# (user id, name, language, flow, turns)
DEEP_LINKS: list[tuple[int, str, str, str, list[Turn]]] = [
    (6001, "Anna", "en", "csat", [("tap 1", "satisfied", 1)]),
    (6002, "Eleni", "el", "csat", [("tap 0", "satisfied", 0),
                                   ("type Αργήσατε", "what_went_wrong", "Αργήσατε")]),
    (6003, "Rasa", "lt", "csat", [("hint gal būt", None, None), ("type ne", "satisfied", 0),
                                  ("type Ilgai laukiau", "what_went_wrong", "Ilgai laukiau")]),
    (6004, "Bob", "en", "nps", [("tap 10", "score", 10),
                                ("type Fast and kind", "promoter_reason", "Fast and kind")]),
    (6005, "Nikos", "el", "nps", [("type 3", "score", 3), ("type /skip", None, None)]),
    (6006, "Jonas", "lt", "nps", [("tap 7", "score", 7), ("tap skip", None, None)]),
    (6007, "Carol", "en", "ces", [("tap 6", "effort", 6), ("type Quick", "comment", "Quick")]),
    (6008, "Maria", "el", "ces", [("hint 9", None, None), ("type 2", "effort", 2),
                                  ("type Γραφειοκρατία", "comment", "Γραφειοκρατία")]),
    (6009, "Dave", "en", "csat", [("both tap 0", "satisfied", 0),
                                  ("both type No call back", "what_went_wrong", "No call back")]),
    (6101, "Erin", "en", "nps", [("race 9 10", "score", None),
                                 ("type Great support", "promoter_reason", "Great support")]),
    (6102, "Ona", "lt", "ces", [("race 5 5", "effort", None), ("tap skip", None, None)]),
    (6103, "Sofia", "el", "nps", [("race 10 9", "score", None), ("type /skip", None, None)]),
    (6104, "Frank", "en", "ces", [("race 4 4", "effort", None), ("type Ok", "comment", "Ok")]),
]  # fmt: skip
# surveys the helpdesk schedules through the API: (user id, name, language, locale, flow, turns)
SCHEDULED: list[tuple[int, str, str, str | None, str, list[Turn]]] = [
    (6201, "Gus", "en", None, "csat", [("tap 1", "satisfied", 1)]),  # locale: the flow's first
    (6202, "Ioanna", "el", "el-GR", "nps", [("tap 9", "score", 9),
                                            ("type Εξαιρετικά", "promoter_reason", "Εξαιρετικά")]),
    (6203, "Lukas", "lt", "lt", "ces", [("tap 7", "effort", 7), ("type /skip", None, None)]),
    (6204, "Hana", "en", None, "nps", [("tap 2", "score", 2), ("tap skip", None, None)]),
    (6205, "Petros", "el", "el", "csat", [("tap 0", "satisfied", 0),
                                          ("type Άργησαν", "what_went_wrong", "Άργησαν")]),
    (6206, "Vytas", "lt", "lt-LT", "ces", [("type 4", "effort", 4),
                                           ("type Ačiū", "comment", "Ačiū")]),
]  # fmt: skip
RACES = sum(turn[0].startswith(("race", "both")) for *_, turns in DEEP_LINKS for turn in turns)


@dataclass
class Outcome:
    expected: list[Row]
    first_questions: dict[str, int]  # customer -> messages asking their first question
    expected_first: dict[str, int]
    closing: dict[str, int]  # customer -> messages without buttons (the thanks)
    races: dict[str, list[str]]


def settle_races(outcome: Outcome, export: list[Row], winners: dict[str, str]) -> list[Row]:
    """The expected rows with each race's winner filled in from the export of that run (the
    one answer recorded for the raced question must be one of the values tapped)."""
    settled: list[Row] = []
    for flow, question, value, text, user, locale in outcome.expected:
        if value is None and text is None:  # a race's placeholder
            found = [r[2] for r in export if (r[0], r[1], r[4]) == (flow, question, user)]
            assert len(found) == 1 and str(found[0]) in outcome.races[user], (user, found)
            value, winners[user] = found[0], str(found[0])
        settled.append((flow, question, value, text, user, locale))
    return sorted(settled, key=repr)


async def play(fake: FakeTelegram, lb: Balancer, api: Worker, winners: dict[str, str]) -> Outcome:
    """Every customer at once; what should have been recorded and what the bot sent."""
    expected: list[Row] = []
    races: dict[str, list[str]] = {}
    everyone: list[Customer] = []
    runs: list[Awaitable[None]] = []

    def customer(uid: int, name: str, lang: str, flow: str, locale: str) -> Customer:
        user = fake.user(uid, name, language_code=lang)
        everyone.append(c := Customer(fake, lb, user, flow, locale, expected, winners, races))
        return c

    async def deep_link(c: Customer, turns: list[Turn]) -> None:
        await c.start()
        await c.answer(turns)

    for uid, name, lang, flow, turns in DEEP_LINKS:
        runs.append(deep_link(customer(uid, name, lang, flow, lang), turns))
    soon = datetime.now(UTC) + timedelta(seconds=2)
    for i, (uid, name, lang, locale, flow, turns) in enumerate(SCHEDULED):
        c = customer(uid, name, lang, flow, (locale or "en").split("-")[0])
        at = soon + timedelta(seconds=0.3 * i)  # due one by one: both dispatchers take some
        body = {"flow": flow, "platform": "telegram", "user": c.uid, "send_at": at.isoformat()}
        accepted = await lb.client.post(f"{api.url}/api/v1/surveys", json=body | (
            {"locale": locale} if locale else {}))  # fmt: skip
        assert accepted.status_code == 202 and accepted.json()["status"] == "scheduled", (
            accepted.text
        )
        runs.append(c.answer(turns, f"{api.url}/api/v1/surveys/{accepted.json()['session_id']}"))
    await asyncio.gather(*runs)
    return Outcome(
        expected=expected,
        first_questions={
            c.uid: sum(question_index(m) == 0 for m in c.bot_messages()) for c in everyone
        },
        expected_first={c.uid: 1 + c.reasks for c in everyone},
        closing={c.uid: sum(not has_buttons(m) for m in c.bot_messages()) for c in everyone},
        races=races,
    )


def exported(jsonl: str) -> list[Row]:
    rows = [json.loads(line) for line in jsonl.splitlines() if line.strip()]
    return sorted(
        ((r["flow_id"], r["question_id"], r["value"], r["text"], r["user_id"], r["locale"])
         for r in rows),
        key=repr,
    )  # fmt: skip


def send_jobs(metrics_text: str) -> Counter[str]:
    """surveybot_jobs_total{kind="send"} by outcome, from one worker's /metrics."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "surveybot_jobs_total" and sample.labels.get("kind") == "send":
                counts[sample.labels["outcome"]] += int(sample.value)
    return counts


async def test_two_workers_on_postgresql_export_what_one_sqlite_worker_does(
    tmp_path: Path,
) -> None:
    winners: dict[str, str] = {}
    async with (
        postgres_url(tmp_path) as pg_url,
        httpx.AsyncClient(timeout=WAIT) as client,
        asyncio.timeout(TOTAL),
    ):
        # two workers on PostgreSQL, behind the test's balancing
        async with FakeTelegram() as fake:
            fake.deliver_updates = False
            site = Site(tmp_path / "pg", fake, pg_url)
            async with site.workers("worker-a", "worker-b") as workers:
                lb = Balancer(client, workers)
                outcome = await play(fake, lb, workers[0], winners)
                jobs = [send_jobs((await client.get(f"{w.url}/metrics")).text) for w in workers]
            pg_export = exported(await site.command("export", "--format", "jsonl"))
        pg_expected = settle_races(outcome, pg_export, winners)
        storage = PostgresStorage(pg_url)
        await storage.open()
        try:
            claims = await storage.pool.fetch("SELECT kind, status, attempts FROM jobs")
        finally:
            await storage.close()

        # one worker on SQLite, each event once
        async with FakeTelegram() as fake:
            fake.deliver_updates = False
            site = Site(tmp_path / "sqlite", fake, "sqlite:///data/surveys.db")
            async with site.workers("single") as workers:
                single = Balancer(client, workers)
                reference = await play(fake, single, workers[0], winners)
            sqlite_export = exported(await site.command("export", "--format", "jsonl"))

    # the load was really split, duplicated and raced
    assert lb.posted["worker-a"] > 10 and lb.posted["worker-b"] > 10, lb.posted
    assert lb.duplicated >= 5 and lb.raced == RACES, (lb.duplicated, lb.raced)
    # every answer once, the same in both installations and as the script gave them
    assert pg_export == sqlite_export
    assert pg_export == pg_expected
    assert sqlite_export == sorted(reference.expected, key=repr)
    # each customer asked their first question once (again only after invalid input), each
    # completed survey thanked once
    for result in (outcome, reference):
        assert result.first_questions == result.expected_first
        assert set(result.closing.values()) == {1}, result.closing
    # each scheduled send ran once across the two workers: claimed once, sent once
    total = sum(jobs, Counter())
    assert total == Counter({"sent": len(SCHEDULED)}), [dict(j) for j in jobs]
    sends = [(r["status"], r["attempts"]) for r in claims if r["kind"] == "send"]
    assert sends == [("done", 1)] * len(SCHEDULED), sends


async def test_polling_on_postgresql_says_at_start_that_it_is_single_consumer(
    tmp_path: Path,
) -> None:
    async with postgres_url(tmp_path) as pg_url, FakeTelegram() as fake:
        site = Site(tmp_path, fake, pg_url)
        site.env["SURVEYBOT_TELEGRAM__MODE"] = "polling"
        async with asyncio.timeout(STARTUP + 60), site.workers("poller") as (poller,):
            pass
    assert "telegram polling is single-consumer" in poller.output(), poller.output()
