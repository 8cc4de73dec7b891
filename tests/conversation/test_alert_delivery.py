"""What the sender does with alert rows, on real storage with the recording adapter: the
alert posted once (a delivery repeated after a crash edits it), the comment edited into it,
nothing posted for a customer erased before the alert went out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.conversation.alert_delivery import deliver_alert
from bot.conversation.alerts import AlertRule, Alerts
from bot.survey.engine import Reply, advance, begin
from bot.survey.loader import FlowRegistry
from storage.base import OutboxMessage, SessionRecord, Storage
from storage.sqlite.backend import SQLiteStorage
from tests.support.recording import RecordingAdapter

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = SQLiteStorage(f"sqlite:///{tmp_path / 'alerts.db'}")
    await store.open()
    yield store
    await store.close()


async def owed_rows(storage: Storage, registry: FlowRegistry) -> list[OutboxMessage]:
    """The alert row of an NPS 3 and the update row of the comment after it."""
    flow = registry.get("nps")
    assert flow is not None
    state = begin(flow, "en", {"ticket_id": "T-9"}).state
    session = SessionRecord(id="s-bob-000001", flow_id="nps", flow_version=flow.version,
                            platform="telegram", user_id="5004", locale="en", state=state,
                            context=state.context,
                            created_at=NOW, updated_at=NOW)  # fmt: skip
    await storage.create_session(session)
    alerts = Alerts({"d": AlertRule(when="nps <= 6", to="slack:C0STAFF")})
    score = advance(flow, state, Reply(kind="tap", question_index=0, value="3"))
    [alert] = alerts.owed(flow, session, score, NOW, name="Bob")
    comment = advance(flow, score.state, Reply(kind="text", value="Too slow"))
    [update] = alerts.owed(flow, session.model_copy(update={"state": score.state}), comment, NOW)
    return [alert, update]


async def test_an_alert_is_posted_once_and_its_comment_edited_in(
    storage: Storage, registry: FlowRegistry
) -> None:
    alert, update = await owed_rows(storage, registry)
    slack = RecordingAdapter(platform="slack")
    posted = await deliver_alert(storage, slack, alert)
    assert posted is not None and list(slack.cards) == [posted]
    assert await deliver_alert(storage, slack, alert) == posted  # after a crash: edited
    assert await deliver_alert(storage, slack, update) == posted
    assert list(slack.cards) == [posted]
    address, card = slack.cards[posted]
    assert address.chat_id == "C0STAFF" and "Comment: “Too slow”" in card.lines
    assert "Customer: Bob (telegram 5004)" in card.lines and "Ticket: T-9" in card.lines
    [followup] = await storage.followups()
    assert (followup.message_id, followup.comment) == (posted, "Too slow")


async def test_nothing_is_posted_for_a_customer_erased_before_the_alert_went_out(
    storage: Storage, registry: FlowRegistry
) -> None:
    alert, update = await owed_rows(storage, registry)
    await storage.erase_user("telegram", "5004")
    slack = RecordingAdapter(platform="slack")
    assert await deliver_alert(storage, slack, alert) is None
    assert await deliver_alert(storage, slack, update) is None
    assert slack.cards == {} and await storage.followups() == []
