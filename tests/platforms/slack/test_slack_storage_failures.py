"""When the disk is full, Slack is not told an envelope arrived (issue 11, "Done when"); the
Telegram twin is tests/platforms/telegram/test_telegram_storage_failures.py.

Amy answers CSAT over Socket Mode while surveybot's SQLite database sits on a small tmpfs that
a filler file fills up (root only; skipped otherwise). She taps "No" while the disk is full: the
click is not acknowledged (Slack shows her its timeout error; clicks are never redelivered),
nothing is recorded, ``/healthz`` is 503 with SQLite's own error and the log names it. Space
returns, she taps again: recorded once, she gets the follow-up question. The disk fills again as
she types her comment: that event is not acknowledged either, so Slack delivers it again (a new
envelope, ``retry_attempt`` + 1); once space returns a retry is taken, the comment is recorded
once and she is thanked once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from bot.web.api import create_app
from tests.support.disk import fill
from tests.support.slack_support import AMY, JSON, STAFF, Workspace, action_id_of, workspace

FULL = "database or disk is full"
THANKS = "Thank you for your feedback! It helps us improve our support."


async def healthz(ws: Workspace) -> httpx.Response:
    """GET /healthz of the app `surveybot run` serves beside Socket Mode."""
    transport = httpx.ASGITransport(app=create_app(ws.svc))
    async with httpx.AsyncClient(transport=transport, base_url="http://surveybot") as client:
        return await client.get("/healthz")


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def deliveries(ws: Workspace, event_id: str) -> list[JSON]:
    """Every envelope Slack sent the event in (the first and its retries)."""
    return [e for e in ws.fake.envelopes if (e.get("payload") or {}).get("event_id") == event_id]


async def answers(ws: Workspace) -> list[tuple[str, int | None, str | None]]:
    return [(r.question_id, r.value, r.text) for r in await ws.answers()]


async def test_a_tap_and_a_comment_while_the_disk_is_full_are_not_acknowledged_and_count_once(
    flows_dir: Path, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with workspace(small_disk, flows_dir, "socket") as ws:
        fake = ws.fake
        fake.retry_delays = (0.0,) + (0.5,) * 10  # Slack: at once, after 1 and 5 minutes
        await ws.command(STAFF, f"csat <@{AMY}>")
        question = ws.question(AMY)
        assert question["text"] == "Were you satisfied with the help you received?"
        await ws.settled()  # the question's delivery recorded before the disk fills
        assert (await healthz(ws)).status_code == 200

        caplog.clear()
        filler = fill(small_disk)
        click = await fake.click(AMY, question, action_id_of(question, "No"))
        await fake.wait_for(lambda: click in fake.expired, 10, what="the click left unacked")
        assert click["envelope_id"] not in fake.acks  # Amy saw Slack's timeout
        sick = await healthz(ws)
        assert sick.status_code == 503 and FULL in sick.json()["reason"], sick.text
        assert any(FULL in line for line in errors(caplog)), errors(caplog)
        assert "cannot rollback" not in caplog.text
        assert await answers(ws) == [] and len(ws.messages(AMY)) == 1  # nothing happened

        filler.unlink()  # space returns; Amy taps again
        await ws.tap(AMY, "No", question)
        follow_up = ws.question(AMY)
        assert follow_up["text"].startswith("We're sorry to hear that.")
        assert await answers(ws) == [("satisfied", 0, None)]
        await ws.settled()

        filler = fill(small_disk)
        comment = fake.build_dm_message(AMY, "Nobody answered for two days")
        first = await fake.push_event(comment)
        await fake.wait_for(lambda: len(deliveries(ws, comment["event_id"])) >= 3, 15,
                            what="the comment delivered again and again")  # fmt: skip
        sent = deliveries(ws, comment["event_id"])
        assert not fake.acks.keys() & {e["envelope_id"] for e in sent}  # none acknowledged
        assert first["retry_attempt"] == 0 and [e["retry_attempt"] for e in sent][:3] == [0, 1, 2]
        assert (await healthz(ws)).status_code == 503
        assert ws.texts(AMY)[-1] != THANKS

        filler.unlink()
        await fake.wait_for(lambda: ws.texts(AMY)[-1] == THANKS, 15, what="the thanks")
        await ws.settled()
        acked = [e for e in deliveries(ws, comment["event_id"]) if e["envelope_id"] in fake.acks]
        assert len(acked) == 1  # one retry taken; Slack stops redelivering
        assert ws.texts(AMY).count(THANKS) == 1
        assert await answers(ws) == [
            ("satisfied", 0, None),
            ("what_went_wrong", None, "Nobody answered for two days"),
        ]
        assert (await healthz(ws)).status_code == 200
