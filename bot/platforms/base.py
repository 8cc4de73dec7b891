"""The Adapter protocol: what the runtime asks of a chat platform.

Adapters only translate. Incoming platform events become :class:`bot.chat.Inbound` and are
handed to ``Runtime.handle``; the runtime calls back into the adapter to show prompts. An
adapter never decides which question comes next and never touches storage.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fastapi import APIRouter

from bot.chat import Address, Inbound, Platform, Prompt, Sent


@runtime_checkable
class Adapter(Protocol):
    platform: Platform

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        """Show a prompt; raise :class:`bot.chat.DeliveryError` when it cannot."""

    async def settle(self, inbound: Inbound, text: str) -> None:
        """Replace the tapped message by ``text`` (the question and the chosen answer), without
        buttons. Errors such as "message is not modified" are swallowed and logged."""

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        """Answer what the person did. For a tap: the platform's ack (an alert or ephemeral
        message when ``notice`` is given). For typed text, ``notice`` is sent as a reply."""

    async def locale_of(self, address: Address) -> str | None:
        """The customer's language as the platform knows it (e.g. "el-GR"), if it does."""


@runtime_checkable
class PlatformRunner(Protocol):
    """A running platform connection: its adapter, optional HTTP routes for the project's
    server (webhook / HTTP mode), and start/stop for polling or socket connections."""

    adapter: Adapter

    def router(self) -> APIRouter | None:
        """Routes to mount on the HTTP server (e.g. POST /telegram/webhook), or None."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
