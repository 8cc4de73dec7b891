"""Answers/s on PostgreSQL with 1 worker and with 2 workers sharing the database; the last line
is the ratio 2-worker / 1-worker.

What a worker is here: a separate OS process (multiprocessing, spawn) running the real
``Runtime`` on the real ``PostgresStorage`` (the pool size `surveybot run` uses) with a
recording adapter in place of a platform. Not `surveybot run` behind webhooks: a Telegram
worker paces its Bot API calls at 30 requests/s (PTB's AIORateLimiter, see
bot/adapters/telegram.py) and every answer costs two of them (the edit of the tapped message,
the next question), so real workers would measure that limiter, about 15 answers/s each, not
the database or the runtime.

Load: the parent starts N customers' NPS surveys (not timed). Then, timed, every customer taps
a score and afterwards types a comment, 2N answers in all. Each event goes to a worker chosen
at random (fixed seed), as a load balancer without session affinity would send it, so most
sessions are moved by both workers; each worker handles up to ``--concurrency`` events at once.
The two phases are separated by a barrier (a comment only after its score is committed). After
each run the answers table must hold exactly 2N rows.

Each measurement runs on a fresh schema (``?schema=bench_<random>``), dropped afterwards; the
1- and 2-worker runs alternate ``--rounds`` times and the medians are printed. Each run also
prints how many CPUs the workers kept busy: with one worker near 1.0 and PostgreSQL on the
same machine, a 2-CPU machine has nothing left for a second worker (measured there: about
1,180 answers/s with one worker, 1,020 with two, ratio 0.86).

    python bench/pg_bench.py [--customers 2000] [--concurrency 64] [--rounds 3]
    (SURVEYBOT_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.chat import Address, Inbound, encode_payload  # noqa: E402
from bot.conversation.runtime import Runtime  # noqa: E402
from bot.survey.loader import FlowRegistry  # noqa: E402
from storage.postgres.backend import PostgresStorage  # noqa: E402
from tests.support.recording import RecordingAdapter  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SEED = 7
Event = tuple[str, str, str]  # kind ("tap" | "text"), user id, payload or text


def runtime_on(storage: PostgresStorage) -> Runtime:
    registry = FlowRegistry(ROOT / "flows")
    errors = registry.load_all()
    assert not errors, errors
    return Runtime(registry, storage, {"console": RecordingAdapter()})


# ---- a worker process --------------------------------------------------------------------------
def worker_main(url: str, conn: Connection, concurrency: int) -> None:
    asyncio.run(_worker(url, conn, concurrency))


async def _worker(url: str, conn: Connection, concurrency: int) -> None:
    """Ready once its pool is open; then handles each batch of events it is sent and answers
    with how many it handled and the CPU seconds that took; None stops it."""
    storage = PostgresStorage(url)
    await storage.open()
    runtime = runtime_on(storage)
    await asyncio.gather(*(storage.get_session("warm-up") for _ in range(storage.pool_size)))
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int, event: Event) -> None:
        kind, user, data = event
        if kind == "tap":
            inbound = Inbound(platform="console", kind="tap", user_id=user, payload=data)
        else:
            inbound = Inbound(
                platform="console", kind="text", user_id=user, text=data, event_id=f"{user}:{n}"
            )
        async with gate:
            await runtime.handle(inbound)

    try:
        conn.send("ready")
        while (batch := await loop.run_in_executor(None, conn.recv)) is not None:
            cpu = time.process_time()
            await asyncio.gather(*(one(n, event) for n, event in batch))
            conn.send((len(batch), time.process_time() - cpu))
    finally:
        await storage.close()


# ---- the parent: setup, load balancing, timing -------------------------------------------------
@asynccontextmanager
async def fresh_schema(base: str) -> AsyncIterator[str]:
    admin = await asyncpg.connect(base, timeout=10)
    schema = f"bench_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def start_surveys(url: str, customers: int) -> list[tuple[str, str]]:
    """(user id, session id) of ``customers`` NPS surveys, each with its first question sent."""
    storage = PostgresStorage(url)
    await storage.open()  # migrations
    try:
        runtime = runtime_on(storage)
        gate = asyncio.Semaphore(storage.pool_size)

        async def one(i: int) -> tuple[str, str]:
            user = f"customer-{i}"
            async with gate:
                address = Address(platform="console", user_id=user)
                session = await runtime.start_survey("nps", address, locale="en")
            return user, session.id

        return list(await asyncio.gather(*(one(i) for i in range(customers))))
    finally:
        await storage.close()


async def answers_stored(url: str) -> int:
    storage = PostgresStorage(url)
    await storage.open()
    try:
        return int(await storage.pool.fetchval("SELECT count(*) FROM answers"))
    finally:
        await storage.close()


def phases(sessions: list[tuple[str, str]]) -> list[list[Event]]:
    scores = random.Random(SEED)
    taps = [("tap", user, encode_payload(sid, 0, str(scores.randint(0, 10))))
            for user, sid in sessions]  # fmt: skip
    texts = [("text", user, f"comment from {user}") for user, _ in sessions]
    return [taps, texts]


async def measure(base: str, workers: int, customers: int, concurrency: int) -> tuple[float, float]:
    """Answers/s of ``workers`` processes on a fresh schema, and the CPUs they kept busy."""
    async with fresh_schema(base) as url:
        sessions = await start_surveys(url, customers)
        ctx = mp.get_context("spawn")
        pipes, procs = [], []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(url, child, concurrency), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        loop = asyncio.get_running_loop()
        try:
            for pipe in pipes:
                assert await loop.run_in_executor(None, pipe.recv) == "ready"
            balance = random.Random(SEED)
            started = time.perf_counter()
            handled, cpu = 0, 0.0
            for events in phases(sessions):
                batches: list[list[tuple[int, Event]]] = [[] for _ in pipes]
                for n, event in enumerate(events):
                    batches[balance.randrange(workers)].append((n, event))
                for pipe, batch in zip(pipes, batches, strict=True):
                    pipe.send(batch)
                done = await asyncio.gather(
                    *(loop.run_in_executor(None, pipe.recv) for pipe in pipes)
                )
                handled += sum(n for n, _ in done)
                cpu += sum(seconds for _, seconds in done)
            elapsed = time.perf_counter() - started
            for pipe in pipes:
                pipe.send(None)
        finally:
            for proc in procs:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        stored = await answers_stored(url)
    assert handled == 2 * customers, handled
    assert stored == 2 * customers, f"{stored} answers stored for {2 * customers} given"
    return stored / elapsed, cpu / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64, help="events in flight per worker")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = os.environ.get("SURVEYBOT_TEST_POSTGRES_URL", DEFAULT_URL)
    print(f"PostgreSQL {base}; {args.customers} customers (2 answers each), "
          f"{args.concurrency} events in flight per worker, {os.cpu_count()} CPUs")  # fmt: skip
    rates: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(1, args.rounds + 1):
        for workers in (1, 2):
            rate, busy = await measure(base, workers, args.customers, args.concurrency)
            rates[workers].append(rate)
            print(f"round {round_}: {workers} worker{'s' * (workers > 1)}: {rate:8.1f} answers/s"
                  f" (the workers kept {busy:.2f} CPUs busy)")  # fmt: skip
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"1 worker:  {one:8.1f} answers/s (median of {args.rounds})")
    print(f"2 workers: {two:8.1f} answers/s (median of {args.rounds})")
    print(f"ratio 2-worker/1-worker: {two / one:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
