"""Scenario 3 of bench/pipeline_bench.py: a bulk send through the HTTP API while customers answer.

A helpdesk requests ``--bulk`` NPS surveys (``POST /api/v1/surveys``, one per customer who has
started the bot, ``--post-concurrency`` requests at a time) while ``--bulk-customers``
customers answer NPS themselves at once (a finished customer is replaced by a new one) until
every bulk survey's question has reached the fake. With ``--think`` the customers read before
each tap and comment (bench/pipeline_customers.py) and the first ones arrive spread over
``2 × think`` seconds instead of all in the same instant. Reported: interactive step p50/p99
per step, the bulk send rate (first to last bulk question) against the rate surveybot is
configured to send at, the rate of all sendMessage calls in that window (and of all messages
and edits: the budget used), and 429s from the fake.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.pipeline_bots import (
    SURVEY_METHODS,
    call_counts,
    configured_rate,
    free_port,
    new_fake,
    surveybot,
    surveybot_limits,
    too_many_requests,
)
from bench.pipeline_customers import STEPS, Outcome, Watch, answer_survey, percentile

BULK_IDS = 7_000_000  # bulk recipients' user ids start here; interactive customers at 1_000_000
THANKS = "Thank you for taking the time to answer!"


async def post_surveys(
    url: str, token: str, users: list[int], concurrency: int, outcomes: Counter[str]
) -> None:
    """Request one NPS survey per user, counting the API's answers (status or HTTP code) in
    ``outcomes`` as they come (so a run cut short still reports them)."""
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:

        async def post(user: int) -> None:
            body = {
                "flow": "nps",
                "platform": "telegram",
                "user": str(user),
                "idempotency_key": f"bulk-{user}",
                "context": {"ticket_id": str(user)},
            }
            async with gate:
                try:
                    response = await client.post("/api/v1/surveys", json=body)
                except httpx.HTTPError as exc:
                    outcomes[f"error {type(exc).__name__}"] += 1
                    return
            if response.status_code == 202:
                outcomes[str(response.json().get("status"))] += 1
            else:
                outcomes[f"HTTP {response.status_code}"] += 1

        await asyncio.gather(*(post(u) for u in users))


async def healthy(url: str, patience: float = 60.0) -> None:
    deadline = time.monotonic() + patience
    async with httpx.AsyncClient(base_url=url) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"surveybot's HTTP server at {url} did not answer /healthz")


async def bulk(args: argparse.Namespace) -> dict[str, Any]:
    limits = surveybot_limits(args.limits)
    strict_on = args.strict_fake != "off"
    fake, strict = new_fake(strict_on)
    await fake.start()
    watch = Watch(fake).start()
    port = args.port or free_port()
    outcomes: list[Outcome] = []
    posted: Counter[str] = Counter()
    posted_at: list[float] = []
    cut: set[asyncio.Task[None]] = set()
    posting_cut = False
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pipeline-bulk-") as tmp:
        proc = surveybot(fake, Path(tmp), limits, port, args.api_token)
        rate = configured_rate(Path(tmp) / "config.yaml", proc.env)
        recipients = [BULK_IDS + i for i in range(args.bulk)]
        for user in recipients:
            fake.user(user, f"Recipient {user}", "en")
        try:
            await proc.start()
            await healthy(f"http://127.0.0.1:{port}")
            finished = asyncio.Event()
            ids = itertools.count(1_000_000)

            async def customer(slot: int) -> None:
                if args.think:  # reading customers arrive spread out, not all at one instant
                    await asyncio.sleep(random.Random(slot).uniform(0, 2 * args.think))
                while not finished.is_set():
                    outcomes.append(
                        await answer_survey(
                            fake,
                            watch,
                            next(ids),
                            "/start nps",
                            THANKS,
                            args.step_timeout,
                            args.think,
                        )
                    )

            began = time.monotonic()
            deadline = began + args.deadline
            crowd = [asyncio.create_task(customer(n)) for n in range(args.bulk_customers)]
            url = f"http://127.0.0.1:{port}"
            posting = asyncio.create_task(
                post_surveys(url, args.api_token, recipients, args.post_concurrency, posted)
            )
            posting.add_done_callback(lambda _: posted_at.append(time.monotonic()))
            while time.monotonic() < deadline:
                watch.poll()
                if posting.done() and all(watch.count(u) for u in recipients):
                    break
                await asyncio.sleep(0.1)
            finished.set()  # customers finish the survey they are in, until the deadline
            _, cut = await asyncio.wait(crowd, timeout=max(0.0, deadline - time.monotonic()))
            posting_cut = not posting.done()
            for task in [*cut, posting]:
                task.cancel()
            await asyncio.gather(*cut, posting, return_exceptions=True)
        finally:
            await proc.stop()
            await watch.stop()
            await fake.stop()
    sends = sorted(t for u in recipients if (t := watch.first_at(u)) is not None)
    span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
    bulk_rate = (len(sends) - 1) / span if span else None
    in_window = sum(
        1
        for c in fake.method_calls("sendMessage")
        if c.status == 200 and sends and sends[0] <= c.at <= sends[-1]
    )
    budgeted = sum(  # what the sender's budget paces: messages and edits
        1
        for m in ("sendMessage", "editMessageText", "editMessageReplyMarkup")
        for c in fake.method_calls(m)
        if c.status == 200 and sends and sends[0] <= c.at <= sends[-1]
    )
    completed = sum(o.completed for o in outcomes)
    calls = call_counts(fake, besides=recipients)  # bulk questions are not a survey's cost
    steps = {}
    for step in STEPS:
        lat = [o.latencies[step] for o in outcomes if step in o.latencies]
        steps[step] = {
            "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99),
            "n": len(lat),
        }
    return {
        "scenario": "bulk",
        "limits": args.limits,
        "think_s": args.think,
        "notes": limits.notes,
        "strict_fake": strict,
        "requested": args.bulk,
        "api_answers": dict(posted),
        "posting_s": posted_at[0] - began if posted_at and not posting_cut else None,
        "deadline_s": args.deadline,
        "in_flight_at_deadline": len(cut),
        "bulk_sent": len(sends),
        "bulk_span_s": span,
        "bulk_rate": bulk_rate,
        "configured_rate": rate,
        "bulk_rate_ratio": bulk_rate / rate if bulk_rate and rate else None,
        "all_sends_rate": in_window / span if span else None,
        "budgeted_rate": budgeted / span if span else None,
        "budget_used": budgeted / span / rate if span and rate else None,
        "customers": len(outcomes),
        "completed": completed,
        "steps": steps,
        "calls_per_survey": {
            m: calls[m] / completed if completed else None for m in SURVEY_METHODS
        },
        "429s": too_many_requests(fake),
        "429s_bulk": too_many_requests(fake, among=recipients),
        "errors": [o.error for o in outcomes if o.error][:3],
    }


def print_bulk(f: dict[str, Any]) -> None:
    def num(value: float | None, spec: str = ".1f") -> str:
        return "-" if value is None or value != value else format(value, spec)

    print(
        f"\npipeline_bench: bulk, limits {f['limits']}: {f['requested']} surveys via "
        f"POST /api/v1/surveys while customers answer"
    )
    for note in f["notes"]:
        print(f"  note: {note}")
    strict = f["strict_fake"] or "no"
    print(f"  fake enforcing Telegram's limits: {strict}")
    think = f"{f['think_s']:g} s (0.5–1.5 ×) before a tap or a comment"
    print(f"  customers' reading time: {think if f['think_s'] else 'none'}")
    took = "not all by the deadline" if f["posting_s"] is None else f"in {f['posting_s']:.1f} s"
    print(f"  API answers: {f['api_answers']} {took}")
    print(
        f"\ninteractive customers: {f['completed']}/{f['customers']} completed"
        f" ({f['in_flight_at_deadline']} more still answering at the {f['deadline_s']:.0f} s"
        " deadline, not counted)"
    )
    print(f"{'step':<10} {'p50 ms':>9} {'p99 ms':>9} {'n':>6}")
    for step, s in f["steps"].items():
        print(f"{step:<10} {num(s['p50_ms']):>9} {num(s['p99_ms']):>9} {s['n']:>6}")
    print(
        f"\nbulk: {f['bulk_sent']}/{f['requested']} questions sent in {f['bulk_span_s']:.1f} s: "
        f"{num(f['bulk_rate'])} messages/s; configured {num(f['configured_rate'])}/s "
        f"(ratio {num(f['bulk_rate_ratio'], '.2f')}); all sendMessage in that window "
        f"{num(f['all_sends_rate'])}/s"
    )
    print(
        f"budget used: messages and edits in that window {num(f['budgeted_rate'])}/s = "
        f"{num(f['budget_used'], '.2f')} × the configured rate (interactive first, bulk the rest)"
    )
    per = f["calls_per_survey"]
    print(
        "calls per completed interactive survey: "
        + ", ".join(f"{m} {num(per[m], '.2f')}" for m in SURVEY_METHODS)
    )
    print(
        f"429 Too Many Requests from the fake: {f['429s']} ({f['429s_bulk']} to bulk recipients,"
        f" {f['429s'] - f['429s_bulk']} to answering customers or without a chat)"
    )
    for error in f["errors"]:
        print(f"  customer: {error}")
