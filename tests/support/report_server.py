"""The dashboard router served by uvicorn on 127.0.0.1 (a free port), in a thread with its own
event loop where the services live, for tests that need a real HTTP server (a browser,
schemathesis)."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from bot.app import services
from bot.settings import load_settings
from bot.web import docs
from bot.web.dashboard import router


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self.on_started = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.on_started.set()


class Server:
    """uvicorn on 127.0.0.1 (a free port) serving an app with the dashboard router and the
    offline API docs; the services live in the server's own thread and event loop."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.started = threading.Event()
        self.server: _Uvicorn | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.started.set()

    async def _serve(self) -> None:
        async with services(load_settings(self.config)) as svc:
            app = FastAPI(title="surveybot", docs_url=None, redoc_url=None)
            app.include_router(docs.router(app.title))
            app.include_router(router(svc))
            config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                    access_log=False)  # fmt: skip
            self.server = _Uvicorn(config, self.started)
            await self.server.serve()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> Server:
        self.thread.start()
        assert self.started.wait(60), "the server did not start"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(30)
