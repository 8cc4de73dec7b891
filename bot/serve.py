"""`surveybot run`: start what the configuration enables and stop cleanly on SIGTERM/SIGINT.

A platform runs when its token is set (DESIGN.md "Interfaces"). With no platform configured,
the terminal becomes the chat: type ``/start FLOW`` to begin a survey, then answer.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import signal
from typing import Literal

from rich.console import Console

from bot.adapters.base import PlatformRunner
from bot.adapters.console import ConsoleAdapter, read_line
from bot.app import Services, services
from bot.messages import Address, Inbound
from bot.runtime import UnknownFlow
from bot.settings import Settings

log = logging.getLogger(__name__)


def platform_runners(svc: Services) -> list[PlatformRunner]:
    """One runner per platform whose token is set; their adapters join the runtime."""
    settings = svc.settings
    runners: list[PlatformRunner] = []
    if settings.telegram_token is not None:
        from bot.adapters.telegram import build_runner as telegram_runner

        runners.append(telegram_runner(svc))
    if settings.slack_bot_token is not None:
        from bot.adapters.slack import build_runner as slack_runner

        runners.append(slack_runner(svc))
    for runner in runners:
        svc.runtime.adapters[runner.adapter.platform] = runner.adapter
    return runners


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with services(settings) as svc:
        runners = platform_runners(svc)
        if not runners:
            log.info("no platform token set: running the console chat")
            await _console_chat(svc, stop)
            return
        for runner in runners:
            await runner.start()
            log.info("%s started", runner.adapter.platform)
        try:
            await stop.wait()
        finally:
            for runner in reversed(runners):
                await runner.stop()


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
        reader = asyncio.ensure_future(asyncio.to_thread(read_line))
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if reader not in done:
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
        kind: Literal["text", "skip"] = "skip" if text == "/skip" else "text"
        await svc.runtime.handle(Inbound(platform="console", kind=kind, user_id=user, text=text))
