"""A recording fake adapter for runtime and dispatcher tests (errbot's backends/test.py idea):
it implements the Adapter protocol, records everything the runtime asks of a platform, and can
refuse deliveries on demand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from bot.chat import Address, Card, DeliveryError, Inbound, Platform, Prompt, Sent, Settled


@dataclass
class Delivery:
    address: Address
    prompt: Prompt
    message_id: str


@dataclass
class RecordingAdapter:
    platform: Platform = "console"
    locale: str | None = None
    sent: list[Delivery] = field(default_factory=list)
    settled: list[tuple[Inbound, str]] = field(default_factory=list)
    acks: list[tuple[Inbound, str | None]] = field(default_factory=list)
    fail_next: list[DeliveryError] = field(default_factory=list)
    transcript: list[tuple[str, Prompt | str]] = field(default_factory=list)  # user, shown
    cards: dict[str, tuple[Address, Card]] = field(default_factory=dict)  # by message id
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        if self.fail_next:
            raise self.fail_next.pop(0)
        message_id = str(next(self._ids))
        self.sent.append(Delivery(address, prompt, message_id))
        self.transcript.append((address.user_id, prompt))
        return Sent(chat_id=address.chat_id or address.user_id, message_id=message_id)

    async def settle(self, inbound: Inbound, settled: Settled) -> None:
        self.settled.append((inbound, settled.text))

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        self.acks.append((inbound, notice))
        if notice:
            self.transcript.append((inbound.user_id, notice))

    async def locale_of(self, address: Address) -> str | None:
        return self.locale

    async def post_card(self, address: Address, card: Card) -> Sent:
        if self.fail_next:
            raise self.fail_next.pop(0)
        message_id = str(next(self._ids))
        self.cards[message_id] = (address, card)
        return Sent(chat_id=address.chat_id or address.user_id, message_id=message_id)

    async def edit_card(self, address: Address, message_id: str, card: Card) -> None:
        if message_id not in self.cards:
            raise DeliveryError(f"no message {message_id}", permanent=True)
        self.cards[message_id] = (address, card)

    # helpers for assertions
    def prompts(self, user_id: str | None = None) -> list[Prompt]:
        return [d.prompt for d in self.sent if user_id is None or d.address.user_id == user_id]

    def last(self) -> Prompt:
        return self.sent[-1].prompt

    def seen_by(self, user_id: str) -> list[Prompt | str]:
        """What ``user_id`` was shown, in order: prompts sent and notices."""
        return [shown for user, shown in self.transcript if user == user_id]

    def notices(self) -> list[str]:
        return [n for _, n in self.acks if n]
