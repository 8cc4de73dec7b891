from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from bot.conversation.runtime import Runtime
from bot.survey.loader import FlowRegistry
from storage.sqlite.backend import SQLiteStorage
from tests.support.clock import FakeClock, TimedAdapter
from tests.support.disk import mounted_tmpfs
from tests.support.recording import RecordingAdapter

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_FLOWS = ROOT / "flows"

# Property tests check answers, never durations: a per-example deadline is a wall-clock
# assertion that fails on a loaded machine (CI shares its 2 cores).
settings.register_profile("surveybot", deadline=None)
settings.load_profile("surveybot")


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped flows, so tests may edit them."""
    target = tmp_path / "flows"
    target.mkdir()
    for path in SHIPPED_FLOWS.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def registry(flows_dir: Path) -> FlowRegistry:
    reg = FlowRegistry(flows_dir)
    assert reg.load_all() == []
    return reg


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(f"sqlite:///{tmp_path / 'surveys.db'}")
    await storage.open()
    yield storage
    await storage.close()


@pytest.fixture
def adapter() -> RecordingAdapter:
    return RecordingAdapter()


@pytest.fixture
def runtime(
    registry: FlowRegistry, sqlite_storage: SQLiteStorage, adapter: RecordingAdapter
) -> Runtime:
    return Runtime(registry, sqlite_storage, {"console": adapter})


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand (dispatcher and API tests)."""
    return FakeClock()


@pytest.fixture
def telegram(clock: FakeClock) -> TimedAdapter:
    """A recording Telegram adapter that reads the same hand-moved clock."""
    return TimedAdapter(platform="telegram", clock=clock)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of the test's own (root only: skipped otherwise); fill it with
    ``tests.support.disk.fill``."""
    with mounted_tmpfs(tmp_path / "disk") as disk:
        yield disk
