"""What every fake platform server shares: an aiohttp app on 127.0.0.1 (a free port chosen by
the OS), start/stop as an async context manager, a change signal for long polls and workers,
and ``wait_for`` that fails with the fake's state dump instead of hanging.

A platform fake subclasses :class:`FakeServer`, adds its routes in ``routes`` and describes its
state in ``dump``; tests never sleep, they wait on something the fake can observe.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from aiohttp import web

T = TypeVar("T")


class FakeServer:
    """Lifecycle and waiting shared by FakeTelegram and FakeSlack."""

    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    # ---- to fill in by each platform ---------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        """Add the platform's routes to ``app``."""
        raise NotImplementedError

    def dump(self) -> str:
        """The fake's state, for the message of a failed wait."""
        return ""

    async def started(self) -> None:
        """Hook: the server listens on ``self.port`` (start background workers here)."""

    async def stopping(self) -> None:
        """Hook: the server is about to close (stop workers, close sockets and sessions)."""

    # ---- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        await self.started()
        return self

    async def stop(self) -> None:
        await self.stopping()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---- change signal and waiting -------------------------------------------------------------
    def notify(self) -> None:
        """Wake everything waiting on ``changed()`` (long polls, delivery workers)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """The event the next ``notify`` sets; take it *before* checking the state."""
        return self._changed

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str = "",
    ) -> T:
        """Poll ``predicate()`` until truthy and return its value; fail with the state dump."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"wait_for timed out after {timeout}s waiting for {what or predicate}\n"
                    f"{self.dump()}"
                )
            await asyncio.sleep(0.01)
        return result
