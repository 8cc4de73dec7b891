"""`surveybot run`: one process with the HTTP server, the platform connections, the dispatcher's
job loop and the flow watcher, all in one event loop; clean stop on SIGTERM/SIGINT.

A platform runs when its token is set (DESIGN.md "Interfaces"). With no platform configured,
the terminal becomes the chat (type ``/start FLOW``), and the HTTP server runs beside it.

Shutdown order: stop accepting HTTP requests and let those in flight finish (webhook events
included), stop the platform connections, let the dispatcher finish the jobs it holds, stop
watching flows, then close storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import uvicorn
from rich.console import Console

from bot.app import Services, services
from bot.chat import Address, Inbound
from bot.conversation.reload import watch_flows
from bot.conversation.runtime import UnknownFlow
from bot.platforms.base import PlatformRunner
from bot.platforms.console import ConsoleAdapter, read_line
from bot.settings import ConfigError, Settings
from bot.web.server import http_app

log = logging.getLogger(__name__)
RunnerFactory = Callable[[Services], list[PlatformRunner]]


def platform_runners(svc: Services) -> list[PlatformRunner]:
    """One runner per platform whose token is set; their adapters join the runtime."""
    settings = svc.settings
    runners: list[PlatformRunner] = []
    if settings.telegram_token is not None:
        from bot.platforms.telegram.runner import build_runner as telegram_runner

        runners.append(telegram_runner(svc))
    if settings.slack_bot_token is not None:
        from bot.platforms.slack.runner import build_runner as slack_runner

        runners.append(slack_runner(svc))
    for runner in runners:
        svc.runtime.adapters[runner.adapter.platform] = runner.adapter
    return runners


class _Server(uvicorn.Server):
    """uvicorn inside our loop: signals are ours (uvicorn would re-raise them on exit)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run(settings: Settings, *, runners: RunnerFactory = platform_runners) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with services(settings) as svc:
            await _serve(svc, stop, runners(svc))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _serve(svc: Services, stop: asyncio.Event, runners: list[PlatformRunner]) -> None:
    settings = svc.settings
    if settings.storage.url.startswith(("postgresql:", "postgres:")):  # workers may share it
        if settings.telegram_token is not None and settings.telegram.mode == "polling":
            log.info("telegram polling is single-consumer: run one worker (several: webhook mode)")
        if settings.slack_bot_token is not None and settings.slack.mode == "socket":
            log.info("slack Socket Mode is single-consumer: run one worker (several: HTTP mode)")
    for runner in runners:
        svc.runtime.adapters[runner.adapter.platform] = runner.adapter
    try:
        app = http_app(svc, runners)
    except ConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    config = uvicorn.Config(
        app, host=settings.server.host, port=settings.server.port, log_config=None,
        access_log=False, lifespan="auto", timeout_graceful_shutdown=10,
    )  # fmt: skip
    server = _Server(config)
    tasks: dict[str, asyncio.Task[None]] = {
        "http": asyncio.create_task(server.serve(), name="http"),
        "dispatcher": asyncio.create_task(svc.dispatcher.run(stop), name="dispatcher"),
        "watcher": asyncio.create_task(watch_flows(svc.registry, stop), name="watcher"),
    }
    started: list[PlatformRunner] = []
    try:
        for runner in runners:
            started.append(runner)  # stopped on the way out even if its start fails midway
            await runner.start()
            log.info("%s started", runner.adapter.platform)
        if not runners:
            log.info("no platform token set: running the console chat")
            tasks["console"] = asyncio.create_task(_console_then_stop(svc, stop), name="console")
        http = tasks["http"]
        await asyncio.wait(
            [http, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED"
        )
        if http.done() and not stop.is_set():  # could not bind, or crashed
            stop.set()
            http.result()
            raise SystemExit(
                f"the HTTP server stopped: cannot serve on {config.host}:{config.port}"
            )
    finally:
        stop.set()
        server.should_exit = True
        await asyncio.gather(tasks["http"], return_exceptions=True)
        for runner in reversed(started):
            try:
                await runner.stop()
            except Exception:
                log.exception("%s did not stop cleanly", runner.adapter.platform)
        rest = [t for name, t in tasks.items() if name != "http"]
        for outcome in await asyncio.gather(*rest, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("task failed at shutdown: %r", outcome)
        log.info("stopped")


async def _console_then_stop(svc: Services, stop: asyncio.Event) -> None:
    """The console chat; leaving it at a terminal stops the process. With stdin not a
    terminal (a service), its end only ends the chat: the server keeps running."""
    await _console_chat(svc, stop)
    if sys.stdin.isatty():
        stop.set()


async def _read_line() -> str | None:
    """read_line in a daemon thread: a pending read never holds up the process's exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def deliver(line: str | None) -> None:
        if not future.done():
            future.set_result(line)

    def reader() -> None:
        line = read_line()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=reader, name="console-input", daemon=True).start()
    return await future


async def _console_chat(svc: Services, stop: asyncio.Event) -> None:
    console = Console(highlight=False, soft_wrap=True)
    adapter = ConsoleAdapter(console)
    svc.runtime.adapters["console"] = adapter
    user = getpass.getuser()
    console.print(
        f"surveybot console chat. Flows: {', '.join(svc.registry.ids()) or '(none)'}. "
        "Type /start FLOW to begin, /quit to leave.",
        markup=False,
    )
    while not stop.is_set():
        reader = asyncio.ensure_future(_read_line())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if reader not in done:
            reader.cancel()
            break
        line = reader.result()
        if line is None or line.strip() == "/quit":
            break
        text = line.strip()
        if text.startswith(("/start", "/survey")):
            _, _, flow_id = text.partition(" ")
            try:
                await svc.runtime.start_survey(
                    flow_id.strip(),
                    Address(platform="console", user_id=user),
                    triggered_by="console",
                )
            except UnknownFlow as exc:
                console.print(str(exc), markup=False)
            continue
        # /skip included: the engine reads it
        await svc.runtime.handle(Inbound(platform="console", kind="text", user_id=user, text=text))
