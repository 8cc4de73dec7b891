"""Fixtures of the HTTP API tests: a fake clock, a Telegram adapter that notes send times,
the composed services on real SQLite, and an httpx client on the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import Services
from bot.conversation.dispatch import Dispatcher
from bot.conversation.runtime import Runtime
from bot.survey.loader import FlowRegistry
from bot.web.api import create_app
from storage.sqlite.backend import SQLiteStorage
from tests.support.api_support import settings_for
from tests.support.clock import FakeClock, TimedAdapter


@pytest.fixture
def svc(
    tmp_path: Path,
    flows_dir: Path,
    registry: FlowRegistry,
    sqlite_storage: SQLiteStorage,
    clock: FakeClock,
    telegram: TimedAdapter,
) -> Services:
    settings = settings_for(tmp_path, flows_dir)
    runtime = Runtime(registry, sqlite_storage, {"telegram": telegram}, clock=clock)
    dispatcher = Dispatcher(runtime, sqlite_storage, settings.surveys, clock=clock)
    return Services(settings, sqlite_storage, registry, runtime, dispatcher)


@pytest.fixture
async def client(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(svc))
    async with httpx.AsyncClient(transport=transport, base_url="http://surveybot") as client:
        yield client
