"""kill -9 of `surveybot run` in the middle of a webhook delivery loses nothing: the row's lease
runs out and the restarted process posts the same event again (the receiver dedupes by id)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.settings import load_settings
from storage.sqlite.backend import SQLiteStorage
from tests.support.console_script import SURVEYBOT
from tests.support.webhook_events import owe_an_expired_survey_event


async def seed_an_expired_survey_event(config: Path) -> None:
    settings = load_settings(config)
    storage = SQLiteStorage(settings.storage.url)
    await storage.open()
    await owe_an_expired_survey_event(storage, settings.webhooks)
    await storage.close()


async def statuses(config: Path) -> list[str]:
    storage = SQLiteStorage(load_settings(config).storage.url)
    await storage.open()
    try:
        return [m.status for m in await storage.outbox_recent(lane="webhook")]
    finally:
        await storage.close()


async def start(config: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SURVEYBOT, "run", "-c", str(config), cwd=config.parent, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def test_killing_surveybot_mid_delivery_loses_no_webhook(
    tmp_path: Path, flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies: list[bytes] = []
    arrived = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        arrived.set()
        if len(bodies) == 1:  # the first delivery hangs: surveybot is killed meanwhile
            await asyncio.sleep(60)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/in", receive)
    receiver = TestServer(app, host="127.0.0.1")
    await receiver.start_server()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"flows_dir: {flows_dir}\n"
        f'storage: {{url: "sqlite:///{tmp_path / "surveys.db"}"}}\n'
        "server: {port: 0}\n"
        "webhooks:\n  timeout: 1s\n  first_retry: 1s\n  endpoints:\n"
        f"    crm: {{url: '{receiver.make_url('/in')}', events: [survey.expired]}}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
    env["SURVEYBOT_WEBHOOK_SECRET_CRM"] = "whsec_crm"
    monkeypatch.setenv("SURVEYBOT_WEBHOOK_SECRET_CRM", "whsec_crm")
    try:
        await seed_an_expired_survey_event(config)
        first = await start(config, env)
        await asyncio.wait_for(arrived.wait(), 30)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert await statuses(config) == ["pending"]

        second = await start(config, env)
        try:
            for _ in range(300):
                if await statuses(config) == ["sent"]:
                    break
                await asyncio.sleep(0.1)
        finally:
            second.terminate()
            await second.wait()
    finally:
        await receiver.close()
    assert await statuses(config) == ["sent"]
    events = [json.loads(b) for b in bodies]
    assert len(events) >= 2 and len({e["id"] for e in events}) == 1  # once, after dedupe
    assert events[0]["type"] == "survey.expired"
