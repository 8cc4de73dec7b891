"""surveybot in a support channel (a Slack Connect channel shared with the customer's company),
through the real bolt app against the fake Slack, in Socket Mode and HTTP mode: what people
say in channels and threads is not a survey answer unless a survey asks for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.slack_support import EVE, Workspace, workspace

SUPPORT = "C0SUPPORT"
KOSTAS = "W0KOSTAS"  # an external customer from another company


@pytest.fixture(params=["socket", "http"])
async def ws(
    request: pytest.FixtureRequest, tmp_path: Path, flows_dir: Path
) -> AsyncIterator[Workspace]:
    async with workspace(tmp_path, flows_dir, request.param) as w:
        w.fake.channel(SUPPORT, "acme-support", shared=True)
        w.fake.external_user(KOSTAS, "kostas", team_id="T0ACME", locale="el-GR")
        yield w
        assert w.fake.protocol_errors == []


async def test_a_customer_talking_in_a_support_thread_with_no_survey_hears_nothing_from_it(
    ws: Workspace,
) -> None:
    ts = await ws.post_in_channel(KOSTAS, SUPPORT, "Το τιμολόγιο είναι λάθος")
    await ws.reply_in_thread(EVE, SUPPORT, ts, "Let me check")
    await ws.reply_in_thread(KOSTAS, SUPPORT, ts, "Ευχαριστώ, λύθηκε")
    assert ws.thread_messages(SUPPORT, ts) == []
    assert ws.fake.bot_messages(SUPPORT) == [] and ws.fake.ephemerals == []
    assert await ws.answers() == []
