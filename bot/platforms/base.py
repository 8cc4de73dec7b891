"""The PlatformRunner protocol: a running platform connection for ``surveybot run``.

The :class:`bot.chat.Adapter` it carries is what the runtime talks to; the runner adds the
connection's lifecycle and, in webhook / HTTP mode, the routes the project's server mounts.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fastapi import APIRouter

from bot.chat import Adapter


@runtime_checkable
class PlatformRunner(Protocol):
    """A running platform connection: its adapter, optional HTTP routes for the project's
    server (webhook / HTTP mode), and start/stop for polling or socket connections."""

    adapter: Adapter

    def router(self) -> APIRouter | None:
        """Routes to mount on the HTTP server (e.g. POST /telegram/webhook), or None."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
