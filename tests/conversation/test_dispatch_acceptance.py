"""Issue 5's "done when", tried as a helpdesk would: `surveybot run` is up (uvicorn on
127.0.0.1, a recording Telegram adapter in place of the network, see acceptance_server.py); a
script posts 200 surveys — duplicates by idempotency key, customers asked recently, some
scheduled 2 s ahead — and the server is restarted (SIGTERM, then started again on the same
database) in the middle. Every customer gets exactly one survey, none before its time; the
throttled are told why; /metrics agrees with what was sent, process by process.

Figures (restart time, lateness of scheduled sends, busiest second) are printed: run with -s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "helpdesk-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `surveybot run` process; start() waits for /healthz, stop() sends SIGTERM."""

    def __init__(self, root: Path, port: int, name: str) -> None:
        self.root, self.port, self.name = root, port, name
        self.proc: asyncio.subprocess.Process | None = None
        self.metrics_file = root / f"metrics-{name}.txt"

    async def start(self) -> None:
        env = os.environ | {"SURVEYBOT_API_TOKEN": TOKEN, "SURVEYBOT_SERVER__PORT": str(self.port)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.acceptance_server", str(self.root / "config.yaml"),
            str(self.root / "sends.jsonl"), str(self.metrics_file), cwd=ROOT, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=(self.root / f"server-{self.name}.log").open("wb"),
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(600):  # a safety bound on startup, not a measurement
                if self.proc.returncode is not None:
                    break
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"server {self.name} did not start:\n{self.log()}")

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout=60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.root / f"server-{self.name}.log").read_text(errors="replace")


def counters(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def total(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return sum(v for (n, ls), v in values.items() if n == name and set(labels.items()) <= set(ls))


@pytest.fixture
async def install(tmp_path: Path, flows_dir: Path) -> AsyncIterator[Path]:
    (tmp_path / "config.yaml").write_text(
        f"flows_dir: {flows_dir}\n"
        f'storage: {{url: "sqlite:///{tmp_path / "surveys.db"}"}}\n'
        "server: {host: 127.0.0.1, port: 8080}\n"
        "surveys: {expires_after: 72h, remind_after: 24h, throttle: 30d}\n",
        encoding="utf-8",
    )
    yield tmp_path


def request(user: str, key: str, send_at: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"flow": "csat", "platform": "telegram", "user": user,
                            "idempotency_key": key, "context": {"ticket_id": key}}  # fmt: skip
    if send_at is not None:
        body["send_at"] = send_at.isoformat()
    return body


async def post_all(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(25)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                response = await client.post("/api/v1/surveys", json=body)
            assert response.status_code == 202, response.text
            return {"request": body, **response.json()}

        return list(await asyncio.gather(*(post(b) for b in bodies)))


async def test_200_helpdesk_requests_across_a_restart_send_each_survey_exactly_once(
    install: Path,
) -> None:
    port = free_port()
    soon = lambda: datetime.now(UTC) + timedelta(seconds=2)  # noqa: E731
    now_users = [f"c{n:03}" for n in range(100)]
    later_users = [f"s{n:03}" for n in range(30)]
    results: list[dict[str, Any]] = []

    first = Server(install, port, "a")
    await first.start()
    results += await post_all(first.url, [request(u, f"T-{u}") for u in now_users[:60]])
    again = [request(u, f"T-{u}") for u in now_users[:15]]  # a retrying helpdesk
    again += [request(u, f"T-{u}-reopened") for u in now_users[40:50]]  # asked already
    results += await post_all(first.url, again)
    scheduled = [request(u, f"T-{u}", soon()) for u in later_users[:15]]
    results += await post_all(first.url, scheduled)
    assert await first.stop() == 0, first.log()
    stopped_at = datetime.now(UTC)
    # stay down until those 15 are due: they must run once after the restart
    last_due = max(datetime.fromisoformat(r["send_at"]) for r in scheduled)
    await asyncio.sleep(max(0.0, (last_due - stopped_at).total_seconds() + 0.2))

    second = Server(install, port, "b")
    restarted = datetime.now(UTC)
    await second.start()
    wave = [request(u, f"T-{u}") for u in now_users[60:]]
    wave += [request(u, f"T-{u}", soon()) for u in later_users[15:]]
    results += await post_all(second.url, wave)
    again = [request(u, f"T-{u}") for u in now_users[15:30] + later_users[:10]]
    again += [request(u, f"T-{u}-reopened") for u in now_users[50:70]]
    results += await post_all(second.url, again)
    assert len(results) == 200

    sessions = {r["session_id"] for r in results if r["session_id"]}
    async with httpx.AsyncClient(base_url=second.url, headers=AUTH) as client:
        for _ in range(1200):  # until every first question went out (a bound, not a measure)
            views = [(await client.get(f"/api/v1/surveys/{s}")).json() for s in sessions]
            if all(v["sent_at"] is not None for v in views):  # owed is not yet delivered
                break
            await asyncio.sleep(0.1)
        scraped = counters((await client.get("/metrics")).text)
    assert await second.stop() == 0, second.log()

    sends = [json.loads(line) for line in (install / "sends.jsonl").read_text().splitlines()]
    per_user = Counter(s["user"] for s in sends)
    assert sorted(per_user) == sorted(now_users + later_users)
    assert set(per_user.values()) == {1}, "somebody got a survey twice"

    by_key = {r["request"]["idempotency_key"]: r for r in results if r["created"]}
    duplicates = [r for r in results if not r["created"] and r["status"] != "throttled"]
    assert len(duplicates) == 40
    assert all(by_key[d["request"]["idempotency_key"]]["session_id"] == d["session_id"]
               for d in duplicates)  # fmt: skip
    throttled = [r for r in results if r["status"] == "throttled"]
    assert len(throttled) == 30 and all("throttle window" in r["reason"] for r in throttled)

    due = {r["request"]["user"]: datetime.fromisoformat(r["request"]["send_at"])
           for r in results if r["created"] and "send_at" in r["request"]}  # fmt: skip
    sent_at = {s["user"]: datetime.fromtimestamp(s["time"], UTC) for s in sends}
    lateness = [(sent_at[u] - at).total_seconds() for u, at in due.items()]
    assert len(lateness) == 30 and min(lateness) >= 0, "a scheduled survey went out early"
    while_down = [u for u, at in due.items() if stopped_at < at < restarted]
    pid_b = second.proc.pid if second.proc else None
    assert all(s["pid"] == pid_b for s in sends if s["user"] in while_down)
    on_time = [(sent_at[u] - at).total_seconds() for u, at in due.items() if at >= restarted]

    dumped = counters((install / "metrics-a.txt").read_text())
    for name, values in (("a", dumped), ("b", scraped)):
        pid = (first if name == "a" else second).proc
        assert pid is not None
        mine = sum(1 for s in sends if s["pid"] == pid.pid)
        assert total(values, "surveybot_surveys_sent_total") == mine
    assert (
        total(dumped, "surveybot_surveys_sent_total")
        + total(scraped, "surveybot_surveys_sent_total")
        == len(sends)
        == 130
    )
    requests = {o: total(dumped, "surveybot_survey_requests_total", outcome=o)
                + total(scraped, "surveybot_survey_requests_total", outcome=o)
                for o in ("sent", "scheduled", "throttled", "duplicate", "failed")}  # fmt: skip
    assert requests["throttled"] == 30 and requests["duplicate"] == 40
    assert requests["sent"] + requests["scheduled"] == 130 and requests["failed"] == 0

    times = sorted(s["time"] for s in sends)
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    print(
        f"\nacceptance: 200 requests -> {len(sends)} sends (each customer once), "
        f"{len(throttled)} throttled, {len(duplicates)} duplicates, answered sent="
        f"{requests['sent']:.0f} / queued={requests['scheduled']:.0f}; sends by process a/b = "
        f"{total(dumped, 'surveybot_surveys_sent_total'):.0f}/"
        f"{total(scraped, 'surveybot_surveys_sent_total'):.0f}; down for "
        f"{(restarted - stopped_at).total_seconds():.2f} s, {len(while_down)} sends fell due "
        f"meanwhile and went out {_span(while_down, sent_at, restarted)} s after the new "
        f"process started; scheduled while up: late by median "
        f"{statistics.median(on_time):.3f} s, max {max(on_time):.3f} s; busiest second "
        f"{busiest} sends"
    )


def _span(users: list[str], sent_at: dict[str, datetime], start: datetime) -> str:
    if not users:
        return "(none)"
    gaps = [(sent_at[u] - start).total_seconds() for u in users]
    return f"{min(gaps):.2f}-{max(gaps):.2f}"
