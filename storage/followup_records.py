"""The follow-up of an alerted answer: its record and its half of the Storage protocol
(:class:`FollowupStore`, which :class:`storage.base.Storage` extends; the methods are written
once for both backends in :mod:`storage.followups`).

One row per alerted answer (a detractor alert): who answered what, where the alert was posted,
and what staff did about it: who said "I'll follow up" and when, who resolved it and when,
with an optional note. A follow-up change can carry outbox rows (the alert's update, a
``followup.updated`` webhook): they are inserted in the same transaction, only if the change
applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from storage.records import OutboxMessage


class Followup(BaseModel):
    """To :meth:`FollowupStore.followup_put` give the answer's fields, the destination and the
    locale; the rest is filled in as the alert is posted and staff act on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    question_id: str  # the alerted (scored) question
    flow_id: str
    platform: str  # the customer's
    user_id: str
    metric: str  # "nps", "csat", "ces"
    score: int | None  # the answer's value (yes/no: 1 = yes, 0 = no)
    destination: str  # where the alert goes: "slack:C0123", "telegram:-100123[:topic]"
    locale: str  # the team's language the alert is written in
    created_at: datetime  # when the answer was recorded
    scale_max: int | None = None  # the score's scale's top (10, 5, 7); None: yes/no
    user_name: str | None = None
    agent: str | None = None
    context: dict[str, str] = Field(default_factory=dict)  # ticket_id, ...
    comment: str | None = None  # the customer's comment, once it arrives
    message_id: str | None = None  # the alert's platform message id, once posted
    owner: str | None = None  # staff who said "I'll follow up" ("slack:U123", "telegram:42")
    owner_name: str | None = None  # their name as the platform showed it, if it did
    owned_at: datetime | None = None
    resolved_by: str | None = None
    resolved_by_name: str | None = None
    resolved_at: datetime | None = None
    note: str | None = None
    change_id: str | None = None  # storage's token of the last change
    id: int | None = None

    @property
    def ticket_id(self) -> str | None:
        return self.context.get("ticket_id")


class FollowupStore(Protocol):
    async def followup_put(self, followups: Sequence[Followup]) -> int:
        """Store new follow-ups in one transaction; how many were new (one per session and
        question: an alert delivered twice opens one follow-up)."""

    async def followup_get(self, followup_id: int) -> Followup | None: ...

    async def followup_of(self, session_id: str, question_id: str) -> Followup | None: ...

    async def followups_of_session(self, session_id: str) -> list[Followup]: ...

    async def followup_at(self, chat: str, message_id: str) -> Followup | None:
        """The follow-up whose alert is the message ``message_id`` posted in ``chat``
        (``slack:C…``, ``telegram:-100…``; in any of its forum topics)."""

    async def followup_posted(self, followup_id: int, message_id: str) -> None:
        """Remember the alert's platform message id (the one its updates edit)."""

    async def followup_comment(self, followup_id: int, comment: str) -> None:
        """Attach the customer's comment."""

    async def followup_own(
        self,
        followup_id: int,
        by: str,
        at: datetime,
        outbox: Sequence[OutboxMessage] = (),
        name: str | None = None,
    ) -> bool:
        """The "I'll follow up" button: ``by`` (named ``name``) owns it from ``at``, and the
        ``outbox`` rows are queued, in one transaction; False (nothing written) if it already
        has an owner or is resolved."""

    async def followup_resolve(
        self,
        followup_id: int,
        by: str,
        at: datetime,
        outbox: Sequence[OutboxMessage] = (),
        name: str | None = None,
    ) -> bool:
        """Resolved by ``by`` (named ``name``) at ``at`` (also its owner, if it had none),
        with ``outbox``; False (nothing written) if it already was resolved."""

    async def followup_note(
        self, followup_id: int, note: str, outbox: Sequence[OutboxMessage] = ()
    ) -> bool:
        """Set the note, with ``outbox``; False if there is no such follow-up or the note
        already is this text."""

    async def followups(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        unresolved: bool = False,
        limit: int | None = None,
    ) -> list[Followup]:
        """Follow-ups whose answer was recorded in ``[since, until)``, oldest first
        (``unresolved``: only those not resolved yet)."""
