"""Which inbox event is being handled right now, so the commit that answers it can mark it done
in the same transaction (``Storage.commit`` / ``create_session`` / ``update_session`` with
``inbox_id``).

The inbox worker sets :data:`handling` around each event it hands to a processor; the runtime
reads it when it commits and marks the ticket ``done`` when its commit carried the event. An
event whose handling commits nothing (a stale tap, a notice) is marked done by the worker
afterwards, with a write of its own.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Ticket:
    inbox_id: int
    done: bool = False  # a commit marked the event done: the worker need not

    def claim(self) -> int | None:
        """The inbox id for the next commit to carry, None once one has."""
        return None if self.done else self.inbox_id


handling: ContextVar[Ticket | None] = ContextVar("surveybot_inbox_event", default=None)


def carried() -> int | None:
    """The inbox id the next commit should mark done, if an inbox event is being handled."""
    ticket = handling.get()
    return None if ticket is None else ticket.claim()


def committed(inbox_id: int | None) -> None:
    """The commit that carried ``inbox_id`` applied: the event is done."""
    ticket = handling.get()
    if ticket is not None and inbox_id is not None and ticket.inbox_id == inbox_id:
        ticket.done = True
