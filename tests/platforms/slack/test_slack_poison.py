"""Poison envelopes on Slack Socket Mode (issue 11, "Done when"): an envelope that slack_sdk or
surveybot cannot make sense of is stored raw like any other, acknowledged, retried,
quarantined and listed by `surveybot inbox`, and logged once; the 20 customers behind it are
all served. The Telegram twin: tests/platforms/telegram/test_telegram_poison.py."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.support.poison import QUICK_QUARANTINE, inbox_list, poison_lines
from tests.support.slack_support import STAFF, workspace

CUSTOMERS = [f"U0P{n:05d}" for n in range(20)]
MALFORMED = ("not_json", "no_payload", "event_without_type")


async def test_a_malformed_envelope_is_quarantined_and_twenty_customers_are_served(
    tmp_path: Path, flows_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with workspace(tmp_path, flows_dir, "socket", inbox=QUICK_QUARANTINE) as ws:
        for user in CUSTOMERS:
            ws.fake.user(user, f"customer{user.lower()}", locale="en-US")
        for kind in MALFORMED:
            await ws.fake.push_malformed(kind)

        async def answers(user: str) -> None:
            await ws.command(STAFF, f"csat <@{user}>")
            await ws.fake.wait_for(lambda: ws.messages(user), what=f"the question to {user}")
            await ws.tap(user, "Yes")
            await ws.fake.wait_for(lambda: len(ws.messages(user)) == 2, what="the follow-up")

        await asyncio.gather(*(answers(user) for user in CUSTOMERS))
        rows = await ws.answers()
        assert sorted((r.user_id, r.question_id, r.value) for r in rows) == [
            (user, "satisfied", 1) for user in CUSTOMERS
        ]
        await ws.fake.wait_for(lambda: len(poison_lines(caplog)) == len(MALFORMED),
                               what="the poison quarantined")  # fmt: skip
        assert len(await ws.svc.storage.inbox_quarantined()) == len(MALFORMED)
        assert ws.fake.acks.keys() >= {e["envelope_id"] for e in ws.fake.envelopes}
        storage_url = ws.settings.storage.url

    assert len(poison_lines(caplog)) == len(MALFORMED)  # one line each, not one per retry
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == poison_lines(caplog), [r.getMessage()[:200] for r in loud]  # nothing else
    assert all(len(r.getMessage()) < 400 and not r.exc_info for r in loud)  # a line, no trace
    listed = await inbox_list(tmp_path, storage_url)
    assert len(listed) == len(MALFORMED) and all("slack" in line for line in listed), listed
