"""Which inbox event is being handled right now, so the commit that answers it records it in the
same transaction (``Storage.commit`` / ``create_session`` / ``claim_event`` with ``inbox_id``).

The inbox sets :data:`handling` around each event it hands to a processor; the runtime reads it
when it commits and marks the ticket ``done`` when its commit carried the event. What a commit
carries (:meth:`Ticket.claim`) is the event's inbox row id once the event is stored, or — on the
inbox's fast path, where an event is handled before it is stored — the event itself, which the
commit then stores done. An event whose handling commits nothing (a stale tap, a notice) is
recorded by the inbox afterwards, with a write of its own.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from storage.base import InboxEvent, InboxRef


@dataclass
class Ticket:
    inbox_id: int | None = None  # the stored row
    event: InboxEvent | None = None  # not stored yet (fast path): a commit stores it, done
    done: bool = False  # a commit recorded the event: the inbox need not

    def claim(self) -> InboxRef | None:
        """What the next commit should carry: the row id, else the event; None once a commit
        has recorded it."""
        if self.done:
            return None
        return self.inbox_id if self.inbox_id is not None else self.event

    def recorded(self, ref: InboxRef) -> None:
        """A commit carrying ``ref`` applied: if ``ref`` is this ticket's, the event is done."""
        if ref == self.inbox_id or (self.event is not None and ref is self.event):
            self.done = True


handling: ContextVar[Ticket | None] = ContextVar("surveybot_inbox_event", default=None)


def carried() -> InboxRef | None:
    """What the next commit should carry, if an inbox event is being handled."""
    ticket = handling.get()
    return None if ticket is None else ticket.claim()


def committed(ref: InboxRef | None) -> None:
    """The commit that carried ``ref`` applied: the event is done."""
    ticket = handling.get()
    if ticket is not None and ref is not None:
        ticket.recorded(ref)
