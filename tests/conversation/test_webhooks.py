"""Signed outgoing webhooks: a customer's answers reach the admins' endpoint at least once,
signed, through the durable outbox; a receiver that keeps failing ends in the dead letters.

The receiver is a real aiohttp server on 127.0.0.1; time is a fake clock (no real waits).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.chat import Address, Inbound, Prompt
from bot.conversation.runtime import Runtime
from bot.conversation.webhook_delivery import WebhookDelivery
from bot.conversation.webhooks import (
    HEADER,
    Endpoint,
    WebhookEvents,
    WebhooksConfig,
    sign,
    verify,
)
from bot.survey.loader import FlowRegistry
from storage.sqlite.backend import SQLiteStorage
from tests.support.clock import FakeClock
from tests.support.recording import RecordingAdapter

ANNA = Address(platform="console", user_id="anna")
SECRET = "whsec_test_helpdesk"


@dataclass
class Receiver:
    """A helpdesk's webhook endpoint: answers 500 to the first ``failures`` requests."""

    failures: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if len(self.requests) <= self.failures:
            return web.Response(status=500, text="try later")
        return web.Response(status=204)

    def events(self) -> dict[str, dict[str, object]]:
        """What the receiver keeps after deduplicating by event id."""
        return {json.loads(body)["id"]: json.loads(body) for _, body in self.requests}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver(failures=3)
    app = web.Application()
    app.router.add_post("/hooks/surveybot", hook.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield hook, str(server.make_url("/hooks/surveybot"))
    await server.close()


def config(url: str, monkeypatch: pytest.MonkeyPatch) -> WebhooksConfig:
    monkeypatch.setenv("SURVEYBOT_WEBHOOK_SECRET_HELPDESK", SECRET)
    events = ["answer.recorded", "survey.completed"]
    return WebhooksConfig(
        endpoints={"helpdesk": Endpoint(url=url, events=events)},  # type: ignore[arg-type]
        retry_for=timedelta(hours=1), first_retry=timedelta(seconds=10),
        max_wait=timedelta(minutes=10),
    )  # fmt: skip


def tap(prompt: Prompt, label: str) -> Inbound:
    button = next(b for row in prompt.rows for b in row if b.label == label)
    return Inbound(platform="console", kind="tap", user_id="anna", payload=button.payload)


async def answer_nps_3_with_comment(
    registry: FlowRegistry, storage: SQLiteStorage, hooks: WebhooksConfig, clock: FakeClock
) -> None:
    adapter = RecordingAdapter()
    runtime = Runtime(registry, storage, {"console": adapter}, clock=clock,
                      webhooks=WebhookEvents(hooks))  # fmt: skip
    await runtime.start_survey("nps", ANNA, {"ticket_id": "T-81"})
    await runtime.handle(tap(adapter.last(), "3"))
    await runtime.handle(Inbound(platform="console", kind="text", user_id="anna",
                                 text="Nobody answered for two days", event_id="m-2"))  # fmt: skip


async def deliver_until_settled(delivery: WebhookDelivery, clock: FakeClock) -> int:
    """Run the delivery worker, moving time on to the next retry each round; the rounds."""
    for rounds in range(1, 200):
        await delivery.deliver_due()
        pending = await delivery.storage.outbox_recent(status="pending", lane="webhook")
        if not pending:
            return rounds
        due = min(m.next_attempt_at or clock() for m in pending)
        clock.advance(seconds=max((due - clock()).total_seconds(), 0.001))
    raise AssertionError("webhook deliveries never settled")


async def test_a_flaky_helpdesk_gets_every_event_once_after_dedupe_and_signed(
    registry: FlowRegistry,
    sqlite_storage: SQLiteStorage,
    receiver: tuple[Receiver, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, url = receiver
    hooks, clock = config(url, monkeypatch), FakeClock()
    await answer_nps_3_with_comment(registry, sqlite_storage, hooks, clock)
    await deliver_until_settled(WebhookDelivery(sqlite_storage, hooks, clock=clock), clock)

    events = sorted(hook.events().values(), key=lambda e: (e["type"], str(e["data"])))
    assert len(hook.requests) >= 3 + 3  # three refused, then each event accepted
    assert [e["type"] for e in events] == ["answer.recorded"] * 2 + ["survey.completed"]
    recorded = [e["data"]["answer"] for e in events[:2]]  # type: ignore[index]
    assert {(a["question_id"], a["value"], a["text"]) for a in recorded} == {
        ("score", 3, None), ("detractor_reason", None, "Nobody answered for two days"),
    }  # fmt: skip
    assert all(e["data"]["context"] == {"ticket_id": "T-81"} for e in events)  # type: ignore[index]
    for headers, body in hook.requests:
        stamp = int(headers[HEADER].split(",")[0][2:])
        assert verify(SECRET.encode(), headers[HEADER], body, now=stamp)
        assert not verify(b"someone else's secret", headers[HEADER], body, now=stamp)
        assert headers["Surveybot-Event-Id"] == json.loads(body)["id"]
    sent = await sqlite_storage.outbox_recent(status="sent", lane="webhook")
    assert len(sent) == 3 and all(m.platform_message_id == "HTTP 204" for m in sent)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_helpdesk_down_for_good_ends_in_the_dead_letters(
    registry: FlowRegistry, sqlite_storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = config(f"http://127.0.0.1:{closed_port()}/hooks", monkeypatch)
    clock = FakeClock()
    await answer_nps_3_with_comment(registry, sqlite_storage, hooks, clock)
    started = clock()
    await deliver_until_settled(WebhookDelivery(sqlite_storage, hooks, clock=clock), clock)

    dead = await sqlite_storage.outbox_recent(status="dead", lane="webhook")
    assert len(dead) == 3
    assert all("ConnectError" in (m.last_error or "") for m in dead)
    # backoff 10 s, 20 s, 40 s ... capped at 10 min, for an hour: about a dozen attempts
    assert all(8 <= m.attempts <= 14 for m in dead), [m.attempts for m in dead]
    assert clock() - started >= hooks.retry_for - hooks.max_wait


def test_backoff_doubles_up_to_its_cap() -> None:
    hooks = WebhooksConfig(first_retry=timedelta(seconds=10), max_wait=timedelta(minutes=1))
    assert [hooks.backoff(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_the_verification_snippet_in_the_docs_accepts_our_signature_and_nothing_else() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text("utf-8")
    snippet = docs.split("## Verify the signature", 1)[1].split("```python\n", 1)[1]
    namespace: dict[str, object] = {}
    exec(snippet.split("```", 1)[0], namespace)  # the docs' own code, run as written
    check = namespace["verify"]
    assert callable(check)
    body, now = b'{"id":"evt_1","type":"answer.recorded"}', int(time.time())
    header = sign(b"whsec_docs", now, body)
    assert check(b"whsec_docs", header, body)
    assert not check(b"whsec_docs", header, body + b" ")
    assert not check(b"whsec_docs", sign(b"whsec_docs", now - 3600, body), body)  # replayed
