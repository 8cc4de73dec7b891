"""`surveybot run`: one process with the HTTP server, the platform connections, the dispatcher's
job loop and the flow watcher, all in one event loop; clean stop on SIGTERM/SIGINT.

A platform runs when its token is set. With no platform configured,
the terminal becomes the chat (type ``/start FLOW``), and the HTTP server runs beside it.

Start order: the HTTP server, the flow watcher and webhook delivery; then each platform
(its clients ready: PTB's Bot initialized, Slack's token checked); only then the inbox worker,
the sender and the dispatcher's jobs, which need those clients for what a crashed process left.

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

from bot.app import Services, alert_problems, services
from bot.chat import Address
from bot.conversation.reload import watch_flows
from bot.conversation.runtime import UnknownFlow
from bot.conversation.webhook_delivery import WebhookDelivery
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
            problems = alert_problems(svc)
            if problems:  # found at start as by `surveybot validate`
                raise ConfigError("; ".join(problems))
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
        "watcher": asyncio.create_task(watch_flows(svc.registry, stop), name="watcher"),
        "webhooks": asyncio.create_task(
            WebhookDelivery(svc.storage, settings.webhooks).run(stop), name="webhooks"
        ),
    }
    started: list[PlatformRunner] = []
    try:
        for runner in runners:
            started.append(runner)  # stopped on the way out even if its start fails midway
            await runner.start()
            log.info("%s started", runner.adapter.platform)
        _start_workers(svc, stop, tasks)
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


def _start_workers(
    svc: Services, stop: asyncio.Event, tasks: dict[str, asyncio.Task[None]]
) -> None:
    """The inbox worker, the sender and the dispatcher's jobs, once every platform is up: events
    left in the inbox by a crashed process (and messages still owed) need the platform clients
    ready (PTB's Bot initialized, Slack's auth checked). Started earlier, each leftover event
    failed ("ExtBot is not properly initialized") and used up its attempts meanwhile; events
    that come in while a platform starts simply wait in the inbox."""
    tasks["inbox"] = asyncio.create_task(svc.inbox.run(stop), name="inbox")
    if svc.sender is not None:
        tasks["sender"] = asyncio.create_task(svc.sender.run(stop), name="sender")
    tasks["dispatcher"] = asyncio.create_task(svc.dispatcher.run(stop), name="dispatcher")


async def _console_then_stop(svc: Services, stop: asyncio.Event) -> None:
    """The console chat. ``/quit`` leaves the chat and the server keeps running (Ctrl-C stops
    it); the end of input at a terminal (Ctrl-D) stops the process. With stdin not a terminal
    (a service), its end only ends the chat."""
    quit_typed = await _console_chat(svc, stop)
    if sys.stdin.isatty() and not quit_typed:
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


def console_help(svc: Services) -> str:
    flows = ", ".join(svc.registry.ids()) or "(none)"
    server = svc.settings.server
    return (
        f"Commands:\n  /start FLOW  begin a survey (flows: {flows})\n"
        "  /skip        skip an optional question\n"
        "  /help        this list\n"
        "  /quit        leave the chat (the HTTP server keeps running; Ctrl-C stops surveybot)\n"
        "Anything else answers the question on screen; for a numbered list, type the number.\n"
        f"Surveys sent to console:ID through the API (http://{server.host}:{server.port}) "
        "show up here."
    )


async def _console_chat(svc: Services, stop: asyncio.Event) -> bool:
    """Read the terminal until the input ends or stop; True when the person typed /quit."""
    console = Console(highlight=False, soft_wrap=True)
    adapter = ConsoleAdapter(console)
    svc.runtime.adapters["console"] = adapter
    user = getpass.getuser()
    console.print(
        f"surveybot console chat. Flows: {', '.join(svc.registry.ids()) or '(none)'}. "
        "Type /start FLOW to begin, /help for the commands.",
        markup=False,
    )
    while not stop.is_set():
        reader = asyncio.ensure_future(_read_line())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if reader not in done:
            reader.cancel()
            return False
        line = reader.result()
        if line is None:
            return False
        text = line.strip()
        command, _, rest = text.partition(" ")
        if command == "/quit":
            console.print("Left the chat; the HTTP server keeps running. Ctrl-C stops surveybot.",
                          markup=False)  # fmt: skip
            return True
        if command in ("/help", "/?"):
            console.print(console_help(svc), markup=False)
        elif command in ("/start", "/survey"):
            await _console_start(svc, console, Address(platform="console", user_id=user), rest)
        elif text:
            inbound = adapter.reply(text)
            if inbound is None:
                console.print("No question is waiting for you. /start FLOW begins a survey; "
                              "/help lists the commands.", markup=False)  # fmt: skip
            else:
                await svc.runtime.handle(inbound)
    return False


async def _console_start(svc: Services, console: Console, address: Address, flow_id: str) -> None:
    """``/start FLOW`` typed in the console: a customer-started survey like a Telegram deep
    link (the dispatcher throttles it and thanks a customer who answered recently)."""
    flow_id = flow_id.strip()
    if not flow_id:
        flows = ", ".join(svc.registry.ids()) or "(none loaded)"
        console.print(f"Which survey? Type /start FLOW, e.g. /start nps (flows: {flows}).",
                      markup=False)  # fmt: skip
        return
    try:
        result = await svc.dispatcher.request(flow_id, address, triggered_by="console:start")
    except UnknownFlow as exc:
        console.print(str(exc), markup=False)
        return
    if result.status == "failed":
        console.print(f"Could not start {flow_id}: {result.reason}", markup=False)
