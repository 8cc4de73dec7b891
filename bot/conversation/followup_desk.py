"""The buttons on a detractor alert: "I'll follow up" and "Resolved", pressed by support staff.

A press arrives through the inbox like any event; the platform edges hand it here (by its
``sf1:`` payload), never to the survey runtime. Only staff (``staff.<platform>``) may press:
anyone else gets a refusal naming the ID to add, and nothing is recorded. A payload must name
a follow-up of the session it carries (the session id is unguessable) and be pressed on that
alert's own message: anything else is answered "not valid" and changes nothing.

A change (:meth:`storage.base.Storage.followup_own` / ``followup_resolve``) is committed with
what it owes: the alert's card updated in place (an ``alert_update`` row for the sender) and a
``followup.updated`` webhook event. A change that did not apply (someone followed up first,
it was already resolved, a press delivered twice) queues nothing and says why.

The optional note: a staff member replies to the alert (Telegram: replies to its message;
Slack: replies in its thread) and the reply becomes the note shown on the card (the latest
replaces the one before; the thread keeps the whole conversation), with a ``followup.updated``
event (``noted``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.chat import Adapter, Inbound, decode_followup
from bot.conversation.alert_view import staff_member
from bot.conversation.alerts import ALERT_UPDATE, destination_address
from bot.conversation.webhooks import WebhookEvents
from bot.survey.alert_texts import alert_text
from storage.base import Followup, OutboxMessage, Storage, utcnow

log = logging.getLogger(__name__)
PLATFORM_NAMES = {"telegram": "Telegram", "slack": "Slack"}


@dataclass
class FollowupDesk:
    storage: Storage
    staff: Mapping[str, Collection[str]]  # platform -> staff user ids (as text)
    adapters: dict[str, Adapter] = field(default_factory=dict)  # the runtime's, shared
    webhooks: WebhookEvents | None = None
    wake: Callable[[], None] | None = None  # tell the sender something is owed
    clock: Callable[[], datetime] = utcnow

    async def press(self, inbound: Inbound) -> str:
        """Handle one button press on an alert; what came of it (for logs and tests)."""
        adapter = self.adapters[inbound.platform]
        language = inbound.locale
        if inbound.user_id not in self.staff.get(inbound.platform, ()):
            log.info("refused an alert button from non-staff %s user %s", inbound.platform,
                     inbound.user_id)  # fmt: skip
            shown = PLATFORM_NAMES.get(inbound.platform, inbound.platform)
            refusal = alert_text("not_staff", language, {"platform": shown, "id": inbound.user_id,
                                                         "key": inbound.platform})  # fmt: skip
            await adapter.acknowledge(inbound, refusal)
            return "not_staff"
        decoded = decode_followup(inbound.payload)
        followup = await self.storage.followup_get(decoded[1]) if decoded else None
        if decoded is None or followup is None or not _pressed_on(followup, inbound, decoded[0]):
            log.warning("ignored alert button with unknown payload %r", inbound.payload)
            await adapter.acknowledge(inbound, alert_text("invalid", language))
            return "invalid"
        assert followup.id is not None
        now = self.clock()
        by, name = f"{inbound.platform}:{inbound.user_id}", inbound.user_name
        if decoded[2] == "own":
            after = followup.model_copy(update={"owner": by, "owner_name": name, "owned_at": now})
            changed = await self.storage.followup_own(
                followup.id, by, now, self._owed(after, "owned", now), name=name
            )
        else:
            after = followup.model_copy(update={
                "resolved_by": by, "resolved_by_name": name, "resolved_at": now,
                "owner": followup.owner or by, "owned_at": followup.owned_at or now,
                "owner_name": followup.owner_name if followup.owner else name,
            })  # fmt: skip
            changed = await self.storage.followup_resolve(
                followup.id, by, now, self._owed(after, "resolved", now), name=name
            )
        if not changed:
            await adapter.acknowledge(inbound, await self._why_not(followup.id, language))
            return "unchanged"
        await adapter.acknowledge(inbound, None)
        if self.wake is not None:
            self.wake()
        return "owned" if decoded[2] == "own" else "resolved"

    async def note(self, inbound: Inbound) -> bool:
        """A reply to an alert (Telegram: a reply to its message; Slack: in its thread): a
        staff member's text becomes the alert's note (the latest replaces the one before).
        False when the message answers no alert (it goes to the surveys then); a reply by
        someone who is not staff is team talk and changes nothing."""
        replied = inbound.reply_to if inbound.platform == "telegram" else inbound.thread_id
        if inbound.kind != "text" or not inbound.text or not replied or not inbound.chat_id:
            return False
        followup = await self.storage.followup_at(f"{inbound.platform}:{inbound.chat_id}",
                                                  replied)  # fmt: skip
        if followup is None or followup.id is None:
            return False
        if inbound.user_id not in self.staff.get(inbound.platform, ()):
            log.info("a reply to alert %s by non-staff %s is not a note", followup.id,
                     inbound.user_id)  # fmt: skip
            return True
        text = inbound.text.strip()[:1000]
        now = self.clock()
        after = followup.model_copy(update={"note": text})
        if await self.storage.followup_note(followup.id, text, self._owed(after, "noted", now)):
            if self.wake is not None:
                self.wake()
        return True

    def _owed(self, after: Followup, change: str, now: datetime) -> list[OutboxMessage]:
        """The card updated in place, and the webhook event: committed with the change."""
        body = json.dumps({"session_id": after.session_id, "question_id": after.question_id})
        update = OutboxMessage(address=destination_address(after.destination), kind=ALERT_UPDATE,
                               body=body, created_at=now, lane="bulk",
                               session_id=after.session_id)  # fmt: skip
        hooks = self.webhooks.followup_updated(after, change, now) if self.webhooks else []
        return [update, *hooks]

    async def _why_not(self, followup_id: int, language: str | None) -> str:
        current = await self.storage.followup_get(followup_id)
        if current is not None and current.resolved_at is not None:
            name = staff_member(current.resolved_by, current.resolved_by_name)
            return alert_text("already_resolved", language, {"name": name})
        if current is not None and current.owner is not None:
            name = staff_member(current.owner, current.owner_name)
            return alert_text("taken", language, {"name": name})
        return alert_text("invalid", language)


def _pressed_on(followup: Followup, inbound: Inbound, session_id: str) -> bool:
    """The payload names this follow-up's session, and it was pressed on its alert."""
    where = destination_address(followup.destination)
    return (
        session_id == followup.session_id
        and inbound.platform == where.platform
        and inbound.chat_id == where.chat_id
        and (followup.message_id is None or inbound.message_id == followup.message_id)
    )
