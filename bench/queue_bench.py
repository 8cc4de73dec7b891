"""What the durable inbox and outbox cost at the storage level, measured in one run.

N customers each answer one question, C at a time, on one store. Two ways, alternated in
rounds (best of each printed):

- ``commit only``: the answer commit alone (what storage did before the inbox/outbox);
- ``with queues``: the raw event stored first (``inbox_put``), claimed by a worker loop
  (``inbox_claim``), the answer committed with the event marked done and the next question
  owed (``commit(..., inbox_id=, outbox=)``), the question claimed by a sender loop
  (``outbox_claim``) and recorded as sent (``outbox_sent``).

This is storage only (no platform, no engine): the share it shows is an upper bound of what the
queues add to a whole answer. The last line is the ratio (with queues / commit only).

    python bench/queue_bench.py [--customers 3000] [--concurrency 100] [--rounds 3]
        [--url sqlite:///... | postgresql://...]   (default: a new SQLite file per round)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.chat import Address  # noqa: E402
from bot.survey.engine import Answer, SessionState  # noqa: E402
from storage import open_storage  # noqa: E402
from storage.base import InboxEvent, OutboxMessage, SessionRecord, Storage  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)
STATE = SessionState(locale="en", current=1, answers={"score": 9})
ANSWER = Answer(question_id="score", question_index=0, metric="nps", value=9)


def record(i: int) -> SessionRecord:
    return SessionRecord(
        id=f"s{i}", flow_id="nps", flow_version="v1", platform="telegram", user_id=str(i),
        locale="en", state=SessionState(locale="en", current=0), created_at=T0, updated_at=T0,
    )  # fmt: skip


def question(i: int) -> OutboxMessage:
    return OutboxMessage(
        address=Address(platform="telegram", user_id=str(i)), kind="question",
        body='{"text": "What should we do better?"}', created_at=T0, session_id=f"s{i}",
    )  # fmt: skip


async def prepared(url: str, n: int) -> Storage:
    storage = open_storage(url)
    await storage.open()
    await storage.clear_tables()
    await asyncio.gather(*(storage.create_session(record(i)) for i in range(n)))
    return storage


async def commit_only(storage: Storage, n: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            outcome = await storage.commit(f"s{i}", 0, state=STATE, status="active", now=T0,
                                           answer=ANSWER, event_id=f"e{i}")  # fmt: skip
            assert outcome.ok

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


async def with_queues(storage: Storage, n: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    received = asyncio.Event()
    handled = 0

    async def platform(i: int) -> None:  # the webhook: store, then acknowledge
        async with gate:
            event = InboxEvent(platform="telegram", event_id=f"e{i}", key=f"telegram:{i}",
                               user_id=str(i), payload='{"data": "9"}', received_at=T0)  # fmt: skip
            assert await storage.inbox_put([event]) == 1
            received.set()

    async def worker() -> None:
        nonlocal handled
        while handled < n:
            batch = await storage.inbox_claim(200, LEASE, T0)
            if not batch:
                received.clear()
                await received.wait()
                continue

            async def handle(event: InboxEvent) -> None:
                sid = f"s{event.user_id}"
                outcome = await storage.commit(
                    sid, 0, state=STATE, status="active", now=T0, answer=ANSWER,
                    event_id=event.event_id, inbox_id=event.id, outbox=[question(int(sid[1:]))],
                )  # fmt: skip
                assert outcome.ok

            await asyncio.gather(*(handle(e) for e in batch))
            handled += len(batch)

    async def sender() -> None:
        sent = 0
        while sent < n:
            batch = await storage.outbox_claim(200, LEASE, T0)
            if not batch:
                await asyncio.sleep(0.001)
                continue
            await asyncio.gather(*(storage.outbox_sent(m.id or 0, "1", T0) for m in batch))
            sent += len(batch)

    started = time.perf_counter()
    await asyncio.gather(*(platform(i) for i in range(n)), worker(), sender())
    return n / (time.perf_counter() - started)


async def main(url: str | None, n: int, concurrency: int, rounds: int) -> None:
    best = {"commit only": 0.0, "with queues": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, run in (("commit only", commit_only), ("with queues", with_queues)):
                storage = await prepared(url or f"sqlite:///{tmp}/bench-{r}-{name[0]}.db", n)
                try:
                    rate = await run(storage, n, concurrency)
                finally:
                    await storage.close()
                print(f"round {r + 1}: {name}: {rate:,.0f} answers/s")
                best[name] = max(best[name], rate)
    for name, rate in best.items():
        print(f"{name + ':':<18}{rate:,.0f} answers/s best of {rounds}")
    print(f"ratio with/without queues: {best['with queues'] / best['commit only']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.customers, args.concurrency, args.rounds))
