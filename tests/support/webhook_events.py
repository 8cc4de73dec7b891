"""An expired survey whose `survey.expired` webhook event is owed: the seed the webhook CLI and
kill -9 tests share."""

from __future__ import annotations

from bot.conversation.webhooks import WebhookEvents, WebhooksConfig
from bot.survey.engine import SessionState
from storage.base import SessionRecord, Storage, utcnow


async def owe_an_expired_survey_event(storage: Storage, webhooks: WebhooksConfig) -> None:
    now = utcnow()
    session = SessionRecord(
        id="s-expired", flow_id="csat", flow_version="v1", platform="telegram", user_id="42",
        locale="en", state=SessionState(locale="en", current=0), created_at=now,
        updated_at=now, status="expired",
    )  # fmt: skip
    await storage.outbox_put(WebhookEvents(webhooks).owed(session, now, status="expired"))
