"""surveybot against a hand-written python-telegram-bot bot, end to end through a fake Bot API.

Both bots are real processes polling the fake Telegram Bot API (tests/fakes) on 127.0.0.1:
`surveybot run` (the console script, SQLite, a temp config.yaml) and bench/baseline_bot.py
(PTB ConversationHandler + PicklePersistence). Simulated customers answer NPS: the start
command (`/start nps` for surveybot, `/start` for the baseline), a tap on a score, a typed
comment, the thanks (bench/pipeline_customers.py says what a step's latency is).

Scenarios:

- ``interactive`` (default): per round, each bot in turn (the order alternates) serves one
  batch of customers per ``--concurrency`` level; answers/s (2 answers per completed survey)
  per level as the median over rounds, step latency p50/p99 pooled over rounds, the ratio
  surveybot/baseline, and the platform calls each completed survey cost.
- ``bulk``: surveybot alone; ``--bulk`` surveys requested through ``POST /api/v1/surveys``
  while ``--bulk-customers`` customers answer at once, again and again until every bulk survey
  was sent; interactive step p50/p99, the bulk send rate against the configured rate, and 429s.
  The fake enforces Telegram's limits in this scenario when it can (``--strict-fake``).

``--limits off`` sets surveybot's limits off through its settings (environment overrides) as
far as the settings allow; what they cannot switch off is printed. ``--limits default`` leaves
them as shipped. Figures are printed, never asserted (tests/bench only checks the shape).

    python bench/pipeline_bench.py [--rounds 3] [--concurrency 1,10,50]
        [--customers 20,100,200] [--limits off|default] [--json out.json]
    python bench/pipeline_bench.py --scenario bulk [--bulk 2000] [--bulk-customers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline_bots import (  # noqa: E402
    SURVEY_METHODS,
    BotProcess,
    Limits,
    baseline,
    call_counts,
    free_port,
    new_fake,
    surveybot,
    surveybot_limits,
    too_many_requests,
)
from bench.pipeline_customers import (  # noqa: E402
    STEPS,
    Watch,
    crowd,
    percentile,
    step_latencies,
)

BOTS = ("baseline", "surveybot")
NO_QUEUES = "no-queues"  # surveybot with its inbox and outbox off (--queues-off)
START = {"baseline": "/start", "surveybot": "/start nps", NO_QUEUES: "/start nps"}
THANKS = "Thank you for taking the time to answer!"  # flows/nps.yaml, en; the baseline's too
WARMUP = 3  # customers answered one by one before measuring (first-use costs), not reported


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("interactive", "bulk"), default="interactive")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrency",
        type=int_list,
        default=[1, 10, 50],
        help="comma-separated levels of concurrent customers",
    )
    parser.add_argument(
        "--customers",
        type=int_list,
        default=[20, 100, 200],
        help="customers per level (one number: the same for every level)",
    )
    parser.add_argument(
        "--limits",
        choices=("off", "default"),
        help="surveybot's send limits (default: off; bulk: default)",
    )
    parser.add_argument(
        "--strict-fake",
        choices=("auto", "on", "off"),
        default="auto",
        help="the fake answers 429 per Telegram's limits (auto: bulk only)",
    )
    parser.add_argument("--bulk", type=int, default=2000, help="surveys requested via the API")
    parser.add_argument("--bulk-customers", type=int, default=50)
    parser.add_argument(
        "--deadline",
        type=float,
        default=240.0,
        help="bulk: stop after this many seconds even if not every survey went out",
    )
    parser.add_argument("--post-concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=0, help="surveybot's HTTP port (0: free)")
    parser.add_argument("--api-token", default="", help="SURVEYBOT_API_TOKEN (default random)")
    parser.add_argument(
        "--step-timeout",
        type=float,
        default=0.0,
        help="seconds a customer waits for a reply (default 60; bulk 180)",
    )
    parser.add_argument(
        "--queues-off",
        action="store_true",
        help="also run surveybot with its inbox and outbox off (bench-only switch "
        "SURVEYBOT_BENCH_NO_QUEUES=1), interleaved, and print what they cost",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds a customer reads before tapping and before commenting, on average "
        "(0.5–1.5 × this, seeded per customer; default 0: at once)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    if len(args.customers) == 1:
        args.customers = args.customers * len(args.concurrency)
    if len(args.customers) != len(args.concurrency):
        parser.error("--customers: one number, or one per --concurrency level")
    args.limits = args.limits or ("default" if args.scenario == "bulk" else "off")
    args.api_token = args.api_token or secrets.token_urlsafe(16)
    args.step_timeout = args.step_timeout or (180.0 if args.scenario == "bulk" else 60.0)
    return args


def strict_wanted(args: argparse.Namespace) -> bool:
    return args.strict_fake == "on" or (args.strict_fake == "auto" and args.scenario == "bulk")


async def serve_batches(
    name: str, args: argparse.Namespace, limits: Limits, workdir: Path
) -> dict[str, Any]:
    """One bot process on a fresh fake and database: warm-up, then one batch per level."""
    fake, strict = new_fake(strict_wanted(args))
    await fake.start()
    watch = Watch(fake).start()
    proc: BotProcess = (
        baseline(fake, workdir)
        if name == "baseline"
        else surveybot(
            fake, workdir, limits, args.port or free_port(), args.api_token, name == NO_QUEUES
        )
    )
    levels: list[dict[str, Any]] = []
    completed, next_id = 0, 1_000_000
    try:
        await proc.start()
        warm, _ = await crowd(
            fake, watch, range(900_000, 900_000 + WARMUP), 1, START[name], THANKS, args.step_timeout
        )
        completed += sum(o.completed for o in warm)
        for level, count in zip(args.concurrency, args.customers, strict=True):
            users = range(next_id, next_id + count)
            next_id += count
            cpu_bot, cpu_driver = proc.cpu_seconds(), time.process_time()
            outcomes, elapsed = await crowd(
                fake, watch, users, level, START[name], THANKS, args.step_timeout, args.think
            )
            done = sum(o.completed for o in outcomes)
            completed += done
            bot_cpu = (proc.cpu_seconds() or 0.0) - (cpu_bot or 0.0)
            levels.append(
                {
                    "concurrency": level,
                    "customers": count,
                    "completed": done,
                    "elapsed": elapsed,
                    "answers_per_s": 2 * done / elapsed,
                    "bot_cpu_ms": 1000 * bot_cpu / max(done, 1),
                    "driver_cpu_ms": 1000 * (time.process_time() - cpu_driver) / max(done, 1),
                    "latencies": {step: step_latencies(outcomes, [step]) for step in STEPS},
                    "errors": [o.error for o in outcomes if o.error][:3],
                }
            )
    finally:
        await proc.stop()
        await watch.stop()
        await fake.stop()
    return {
        "levels": levels,
        "completed": completed,
        "calls": dict(call_counts(fake)),
        "429s": too_many_requests(fake),
        "strict_fake": strict,
    }


def bots(args: argparse.Namespace) -> tuple[str, ...]:
    return (*BOTS, NO_QUEUES) if args.queues_off else BOTS


async def interactive(args: argparse.Namespace) -> dict[str, Any]:
    limits = surveybot_limits(args.limits)
    names = bots(args)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for number in range(args.rounds):
        # the order turns every round (with two bots: alternates)
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            with tempfile.TemporaryDirectory(prefix=f"pipeline-{name}-") as tmp:
                run = await serve_batches(name, args, limits, Path(tmp))
            runs[name].append(run)
            print(
                f"  round {number + 1} {name}: "
                + ", ".join(
                    f"{lv['concurrency']}: {lv['answers_per_s']:.1f} answers/s"
                    for lv in run["levels"]
                ),
                file=sys.stderr,
                flush=True,
            )
    figures: dict[str, Any] = {
        "scenario": "interactive",
        "limits": args.limits,
        "think_s": args.think,
        "notes": limits.notes,
        "rounds": args.rounds,
        "bots": {},
    }
    for name, bot_runs in runs.items():
        per_level = []
        for i, level in enumerate(args.concurrency):
            batches = [run["levels"][i] for run in bot_runs]
            by_step = {step: [x for b in batches for x in b["latencies"][step]] for step in STEPS}
            pooled = [x for values in by_step.values() for x in values]
            per_level.append(
                {
                    "concurrency": level,
                    "answers_per_s": statistics.median(b["answers_per_s"] for b in batches),
                    "p50_ms": 1000 * percentile(pooled, 50),
                    "p99_ms": 1000 * percentile(pooled, 99),
                    "steps_p50_ms": {k: 1000 * percentile(v, 50) for k, v in by_step.items()},
                    "bot_cpu_ms": statistics.median(b["bot_cpu_ms"] for b in batches),
                    "driver_cpu_ms": statistics.median(b["driver_cpu_ms"] for b in batches),
                    "customers": sum(b["customers"] for b in batches),
                    "completed": sum(b["completed"] for b in batches),
                    "errors": [e for b in batches for e in b["errors"]][:3],
                }
            )
        calls: Counter[str] = Counter()
        for run in bot_runs:
            calls.update(run["calls"])
        completed = sum(run["completed"] for run in bot_runs)
        figures["bots"][name] = {
            "levels": per_level,
            "calls_per_survey": {
                m: calls[m] / completed if completed else None for m in SURVEY_METHODS
            },
            "429s": sum(run["429s"] for run in bot_runs),
            "strict_fake": bot_runs[0]["strict_fake"] if bot_runs else None,
        }
    base, ours = figures["bots"]["baseline"], figures["bots"]["surveybot"]
    figures["ratios"] = {
        str(b["concurrency"]): s["answers_per_s"] / b["answers_per_s"]
        if b["answers_per_s"]
        else None
        for b, s in zip(base["levels"], ours["levels"], strict=True)
    }
    if NO_QUEUES in runs:
        figures["queues"] = queue_costs(runs["surveybot"], runs[NO_QUEUES], args.concurrency)
    return figures


def queue_costs(
    with_queues: list[dict[str, Any]], without: list[dict[str, Any]], levels: list[int]
) -> dict[str, Any]:
    """surveybot's answers/s with its inbox and outbox ÷ without, per level: the ratio of the
    medians over rounds, and the median of each round's own ratio (the two runs of a round are
    adjacent in time, so they saw about the same machine load); also CPU ms per survey."""
    costs: dict[str, Any] = {}
    for i, level in enumerate(levels):
        on = [run["levels"][i] for run in with_queues]
        off = [run["levels"][i] for run in without]
        per_round = [
            a["answers_per_s"] / b["answers_per_s"]
            for a, b in zip(on, off, strict=True)
            if b["answers_per_s"]
        ]
        median_off = statistics.median(b["answers_per_s"] for b in off)
        costs[str(level)] = {
            "with": statistics.median(a["answers_per_s"] for a in on),
            "without": median_off,
            "ratio": statistics.median(a["answers_per_s"] for a in on) / median_off
            if median_off
            else None,
            "ratio_per_round": statistics.median(per_round) if per_round else None,
            "cpu_ms_with": statistics.median(a["bot_cpu_ms"] for a in on),
            "cpu_ms_without": statistics.median(b["bot_cpu_ms"] for b in off),
        }
    return costs


def ms(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.1f}"


def print_interactive(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\npipeline_bench: interactive, limits {figures['limits']}, {figures['rounds']} "
        f"rounds, customers per level {'/'.join(map(str, args.customers))} "
        f"(answers/s: median over rounds; latency: pooled over rounds)"
    )
    for note in figures["notes"]:
        print(f"  note: {note}")
    strict = figures["bots"]["baseline"]["strict_fake"]
    print(f"  fake enforcing Telegram's limits: {strict or 'no'}")
    think = f"{args.think:g} s (0.5–1.5 ×) before a tap or a comment" if args.think else "none"
    print(f"  customers' reading time: {think}\n")
    head = (
        f"{'concurrent':>10}  {'bot':<10} {'answers/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50 start/tap/comment':>22} {'CPU ms/survey':>14} {'driver CPU':>11}  done"
    )
    print(head)
    print("-" * len(head))
    names = bots(args)
    for i, level in enumerate(args.concurrency):
        for name in names:
            lv = figures["bots"][name]["levels"][i]
            steps = "/".join(f"{v:.0f}" for v in lv["steps_p50_ms"].values())
            print(
                f"{level:>10}  {name:<10} {lv['answers_per_s']:>10.1f} {ms(lv['p50_ms']):>8} "
                f"{ms(lv['p99_ms']):>8} {steps:>22} {ms(lv['bot_cpu_ms']):>14} "
                f"{ms(lv['driver_cpu_ms']):>11}  {lv['completed']}/{lv['customers']}"
            )
        ratio = figures["ratios"][str(level)]
        print(f"{'':>10}  {'ratio s/b':<10} {f'{ratio:.2f}' if ratio else '-':>10}")
    print("\nplatform calls per completed survey")
    cols = "".join(f" {m:>23}" for m in SURVEY_METHODS)
    print(f"{'bot':<10}{cols} {'total':>6} {'429s':>5}")
    for name in names:
        per = figures["bots"][name]["calls_per_survey"]
        total = sum(v for v in per.values() if v is not None)
        print(
            f"{name:<10}"
            + "".join(
                f" {ms(per[m]) if per[m] is None else f'{per[m]:.2f}':>23}" for m in SURVEY_METHODS
            )
            + f" {total:>6.2f} {figures['bots'][name]['429s']:>5}"
        )
    for name in names:
        for lv in figures["bots"][name]["levels"]:
            for error in lv["errors"]:
                print(f"  {name} at {lv['concurrency']}: {error}")
    if "queues" in figures:
        print("\ninbox + outbox cost: surveybot answers/s with them ÷ without (no-queues)")
        for level, c in figures["queues"].items():
            ratio, paired = c["ratio"], c["ratio_per_round"]
            print(
                f"{level:>10} concurrent: {c['with']:.1f} ÷ {c['without']:.1f} = "
                f"{'-' if ratio is None else f'{ratio:.2f}'} (median of per-round ratios "
                f"{'-' if paired is None else f'{paired:.2f}'}); CPU ms/survey "
                f"{c['cpu_ms_with']:.1f} with, {c['cpu_ms_without']:.1f} without"
            )
    last = str(args.concurrency[-1])
    ratio = figures["ratios"][last]
    print(
        f"\nsurveybot/baseline answers/s at {last} concurrent: "
        f"{'-' if ratio is None else f'{ratio:.2f}'}"
    )


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = options(argv)
    load_before = os.getloadavg()[0]
    if args.scenario == "bulk":
        from bench.pipeline_bulk import bulk, print_bulk

        figures = await bulk(args)
        print_bulk(figures)
    else:
        figures = await interactive(args)
        print_interactive(figures, args)
    figures["load_average"] = [load_before, os.getloadavg()[0]]
    print(
        f"machine load average (1 min) before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}"
        f" on {os.cpu_count()} CPUs (other work on the machine slows both bots)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return figures


if __name__ == "__main__":
    asyncio.run(main())
