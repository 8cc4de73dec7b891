"""``python -m tests.support.acceptance_server CONFIG SENDLOG METRICS``: `surveybot run` as it ships
(HTTP server, dispatcher, flow watcher, graceful stop), with a recording Telegram adapter in
place of the network: every send is appended to SENDLOG as one JSON line (wall-clock time and
process id), and the Prometheus text is written to METRICS when the process stops."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

from fastapi import APIRouter
from prometheus_client import generate_latest

from bot import metrics
from bot import run as serve
from bot.app import Services
from bot.chat import Address, Inbound, Platform, Prompt, Sent, Settled
from bot.logs import configure
from bot.platforms.base import PlatformRunner
from bot.settings import load_settings


class JsonlAdapter:
    platform: Platform = "telegram"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids = itertools.count(1)

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        message_id = f"{os.getpid()}-{next(self._ids)}"
        line = {"user": address.user_id, "kind": prompt.kind, "session": prompt.session_id,
                "time": time.time(), "pid": os.getpid()}  # fmt: skip
        with self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")
        return Sent(chat_id=address.chat_id or address.user_id, message_id=message_id)

    async def settle(self, inbound: Inbound, settled: Settled) -> None:
        pass

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        pass

    async def locale_of(self, address: Address) -> str | None:
        return None


class RecordingRunner:
    def __init__(self, path: Path) -> None:
        self.adapter = JsonlAdapter(path)

    def router(self) -> APIRouter | None:
        return None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def main() -> None:
    config, sendlog, metrics_out = map(Path, sys.argv[1:4])
    configure("INFO", "json")

    def runners(svc: Services) -> list[PlatformRunner]:
        return [RecordingRunner(sendlog)]

    try:
        asyncio.run(serve.run(load_settings(config), runners=runners))
    finally:
        metrics_out.write_bytes(generate_latest(metrics.REGISTRY))


if __name__ == "__main__":
    main()
