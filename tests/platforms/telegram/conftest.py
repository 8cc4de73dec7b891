"""pytest fixtures of the Telegram end-to-end tests (tests/support/telegram_harness.py has the
helpers): a fake Bot API, settings pointing at it, and a running surveybot World."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram_harness import World, add_people, make_settings, running_bot


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        add_people(server)
        yield server


@pytest.fixture
def settings(fake: FakeTelegram, flows_dir: Path, tmp_path: Path) -> Settings:
    return make_settings(fake, flows_dir, tmp_path / "surveys.db")


@pytest.fixture
async def tg(fake: FakeTelegram, settings: Settings) -> AsyncIterator[World]:
    async with running_bot(fake, settings) as world:
        yield world
