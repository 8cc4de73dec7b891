"""N simulated customers answer the NPS flow concurrently through Runtime + SQLite storage +
a recording adapter. Prints answers/s, p50/p99 latency of handle(), peak RSS, and as the last
line the ratio of answers/s to a floor measured in the same run with the same database
settings: raw aiosqlite inserting and committing one answer row per transaction.

    python bench/engine_bench.py [--customers 2000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosqlite

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.chat import Address, Inbound  # noqa: E402
from bot.conversation.runtime import Runtime  # noqa: E402
from bot.survey.loader import FlowRegistry  # noqa: E402
from storage.sqlite.backend import SQLiteStorage  # noqa: E402
from tests.support.recording import RecordingAdapter  # noqa: E402


async def customers(n: int, concurrency: int, workdir: Path) -> tuple[float, list[float], int]:
    storage = SQLiteStorage(f"sqlite:///{workdir / 'bench.db'}")
    await storage.open()
    registry = FlowRegistry(ROOT / "flows")
    registry.load_all()
    adapter = RecordingAdapter()
    runtime = Runtime(registry, storage, {"console": adapter})
    sessions = []
    for i in range(n):
        address = Address(platform="console", user_id=f"customer-{i}")
        sessions.append(await runtime.start_survey("nps", address, locale="en"))
    first_prompt = {d.address.user_id: d.prompt for d in adapter.sent}
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def timed(inbound: Inbound) -> None:
        started = time.perf_counter()
        await runtime.handle(inbound)
        latencies.append(time.perf_counter() - started)

    async def one(i: int) -> None:
        user = f"customer-{i}"
        async with gate:
            score = i % 11
            button = [b for row in first_prompt[user].rows for b in row][score]
            await timed(Inbound(platform="console", kind="tap", user_id=user,
                                payload=button.payload, event_id=f"tap-{i}"))  # fmt: skip
            await timed(Inbound(platform="console", kind="text", user_id=user,
                                text=f"comment {i}", event_id=f"text-{i}"))  # fmt: skip

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    recorded = sum([1 async for _ in storage.export_rows()])
    await storage.close()
    return elapsed, latencies, recorded


async def floor(rows: int, workdir: Path) -> float:
    """Raw aiosqlite: one answer row per transaction, same pragmas as SQLiteStorage."""
    db = await aiosqlite.connect(workdir / "floor.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        await db.execute(f"PRAGMA {pragma}")
    await db.execute(
        "CREATE TABLE answers (session_id TEXT, question_id TEXT, value INTEGER, text TEXT,"
        " answered_at TEXT, PRIMARY KEY (session_id, question_id))"
    )
    started = time.perf_counter()
    for i in range(rows):
        await db.execute("BEGIN IMMEDIATE")
        await db.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?, ?)",
            (f"s{i}", "score", i % 11, None, "2026-01-01T00:00:00.000000Z"),
        )
        await db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    await db.close()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, interleaved")
    args = parser.parse_args()
    answers = 2 * args.customers
    rates: list[float] = []
    floors: list[float] = []
    latencies: list[float] = []
    for round_no in range(args.rounds):
        # interleave the two measurements so machine noise hits both alike; keep each best
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            elapsed, lat, recorded = asyncio.run(
                customers(args.customers, args.concurrency, workdir)
            )
            if recorded != answers:
                raise SystemExit(f"FAILED: {recorded} answers recorded, expected {answers}")
            rates.append(answers / elapsed)
            latencies.extend(lat)
            floors.append(asyncio.run(floor(answers, workdir)))
        print(f"round {round_no + 1}: {rates[-1]:,.0f} answers/s, floor {floors[-1]:,.0f} rows/s")
    cuts = statistics.quantiles(latencies, n=100)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate, floor_rate = max(rates), max(floors)
    print(f"customers:        {args.customers} (concurrency {args.concurrency})")
    print(f"answers recorded: {answers} per round (exactly as given)")
    median = statistics.median(rates)
    print(f"answers/s:        {rate:,.0f} best of {args.rounds} (median {median:,.0f})")
    print(f"handle() p50:     {cuts[49] * 1000:.2f} ms")
    print(f"handle() p99:     {cuts[98] * 1000:.2f} ms")
    print(f"peak RSS:         {peak_mib:.0f} MiB")
    print(f"floor rows/s:     {floor_rate:,.0f} best of {args.rounds} (raw aiosqlite, 1 row/txn)")
    print(f"ratio vs floor:   {rate / floor_rate:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
