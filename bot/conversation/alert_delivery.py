"""Delivering alert rows (the sender hands them here): ``alert`` opens the follow-up (once,
however often the row is delivered) and posts the card; ``alert_update`` records the comment it
carries, if any, and edits the posted card in place. Every delivery renders the follow-up as it
is now, so the card a chat ends with shows the latest state whatever the order of changes.

An alert already posted (a delivery repeated after a crash) is edited, not posted twice. The
alert of a customer erased (``surveybot erase``) before it went out is not posted.
"""

from __future__ import annotations

import json
import logging

from bot.chat import Adapter
from bot.conversation.alert_view import alert_card
from bot.conversation.alerts import ALERT
from storage.base import Followup, OutboxMessage, Storage

log = logging.getLogger(__name__)


async def deliver_alert(storage: Storage, adapter: Adapter, message: OutboxMessage) -> str | None:
    """Post or update one alert; the platform's message id of the card."""
    body = json.loads(message.body)
    if message.kind == ALERT:
        opened = Followup.model_validate(body["followup"])
        if await storage.get_session(opened.session_id) is None:  # erased meanwhile
            log.info("alert %s: its customer was erased; not posted", message.id)
            return None
        await storage.followup_put([opened])
        followup = await storage.followup_of(opened.session_id, opened.question_id)
    else:
        followup = await storage.followup_of(body["session_id"], body["question_id"])
        comment = body.get("comment")
        if followup is not None and followup.id is not None and comment:
            if comment != followup.comment:
                await storage.followup_comment(followup.id, comment)
                followup = followup.model_copy(update={"comment": comment})
    if followup is None or followup.id is None:  # its alert was never opened: nothing to edit
        log.info("alert update %s: no alert for session %s", message.id, message.session_id)
        return None
    card = alert_card(followup)
    if followup.message_id is not None:
        await adapter.edit_card(message.address, followup.message_id, card)
        return followup.message_id
    sent = await adapter.post_card(message.address, card)
    await storage.followup_posted(followup.id, sent.message_id)
    return sent.message_id
