"""The records of the inbox and the outbox, and storage health (re-exported by storage.base,
where the Storage protocol that takes and returns them lives)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from bot.chat import Address

InboxStatus = Literal["pending", "done", "quarantined"]
OutboxStatus = Literal["pending", "sent", "dead"]
# A customer's own action is answered before bulk sends; "webhook" rows (signed HTTP deliveries
# to the admins' endpoints) have their own worker and are never claimed with chat messages.
Lane = Literal["interactive", "bulk", "webhook"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InboxEvent(_Frozen):
    """One raw platform event. To :meth:`Storage.inbox_put` give the first six fields; the
    rest is storage's bookkeeping, filled in on the way back from a claim or a listing."""

    platform: str
    event_id: str  # the platform's id (update_id, envelope id...): unique per platform
    key: str  # ordering key, e.g. "telegram:chat:42": one key's events run one at a time
    payload: str  # the event as received (JSON text)
    received_at: datetime
    user_id: str | None = None  # whose event, when known: `surveybot erase` removes it
    id: int | None = None
    status: InboxStatus = "pending"
    attempts: int = 0  # claims so far (a crash mid-handling counts: the lease runs out)
    next_attempt_at: datetime | None = None  # due from received_at; later after a failure
    lease_until: datetime | None = None
    last_error: str | None = None
    done_at: datetime | None = None

    def handled(self, now: datetime) -> InboxEvent:
        """This event (handled before it was stored) as it is stored once handled: done."""
        return self.model_copy(update={"status": "done", "done_at": now, "lease_until": None,
                                       "attempts": max(self.attempts, 1)})  # fmt: skip


# What the commit that answers an event carries: the event's inbox row id (stored: marked done),
# or the event itself, not stored yet (the inbox's fast path: stored done in the same
# transaction).
InboxRef = int | InboxEvent


class OutboxMessage(_Frozen):
    """A message owed to a customer. To put one, give the first five fields (and the session
    when there is one, and ``next_attempt_at`` to send it later than at once); the rest is
    filled in by storage."""

    address: Address
    kind: str  # what the body is: "question", "thanks", "notice", "reminder"...
    body: str  # JSON text: what to send (e.g. a Prompt's model_dump_json())
    created_at: datetime
    lane: Lane = "interactive"
    session_id: str | None = None
    id: int | None = None
    status: OutboxStatus = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    sent_at: datetime | None = None
    platform_message_id: str | None = None
    last_error: str | None = None

    @field_validator("body")
    @classmethod
    def _json(cls, body: str) -> str:
        json.loads(body)  # both backends keep only valid JSON
        return body

    @property
    def chat(self) -> str:
        """The conversation the message goes to (its platform budget's per-chat key)."""
        return f"{self.address.platform}:{self.address.chat_id or self.address.user_id}"

    @property
    def stream(self) -> str:
        """What keeps its order: one message in flight per stream, in order. A chat's new
        messages are one stream; the edits of messages already there (``settle``: a tapped
        question shown with its answer) are another beside it, so the next question does
        not wait for the edit of the last one (the stored ``chat`` column)."""
        return f"{self.chat}/edits" if self.kind == "settle" else self.chat


class StorageHealth(_Frozen):
    """Whether writes work: ``error`` is the last write's real error (e.g. "database or disk
    is full") while no write has succeeded since ``failing_since``."""

    ok: bool = True
    error: str | None = None
    failing_since: datetime | None = None
