"""Hot reload with the real file watcher: an admin edits flows/ while surveys are running."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chat import Address, Inbound
from bot.conversation.reload import watch_flows
from bot.conversation.runtime import Runtime
from bot.survey.loader import FlowError, FlowRegistry
from tests.support.recording import RecordingAdapter

ANNA = Address(platform="console", user_id="anna")
Reloads = asyncio.Queue[tuple[Path, list[FlowError]]]


@pytest.fixture
async def reloads(registry: FlowRegistry) -> AsyncIterator[Reloads]:
    """Run the watcher; yields a queue of (path, errors), one item per reloaded file."""
    queue: Reloads = asyncio.Queue()
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch_flows(registry, stop, on_reload=lambda p, e: queue.put_nowait((p, e)),
                    debounce_ms=50)
    )  # fmt: skip
    probe = registry.flows_dir / "probe.yaml"
    for attempt in range(100):  # the watcher is ready once it has seen a change
        probe.write_text(f"# probe {attempt}\n", encoding="utf-8")
        try:
            path, _ = await asyncio.wait_for(queue.get(), timeout=0.2)
        except TimeoutError:
            continue
        if path.name == "probe.yaml":
            break
    probe.unlink()
    await next_reload(queue, "probe.yaml")
    yield queue
    stop.set()
    await task


async def next_reload(queue: Reloads, name: str) -> list[FlowError]:
    """The errors of the next reload of ``name`` (a safety timeout guards against a hang)."""
    while True:
        path, errors = await asyncio.wait_for(queue.get(), timeout=20)
        if path.name == name:
            return errors


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def test_a_valid_edit_serves_new_surveys(
    registry: FlowRegistry, flows_dir: Path, reloads: Reloads
) -> None:
    before = registry.get("csat")
    assert before is not None
    edit(flows_dir / "csat.yaml", "Were you satisfied with", "Are you happy with")
    assert await next_reload(reloads, "csat.yaml") == []
    after = registry.get("csat")
    assert after is not None and after.version != before.version
    assert "Are you happy with" in str(after.questions[0].text)


async def test_a_broken_edit_is_refused_with_its_position_and_the_old_flow_keeps_serving(
    registry: FlowRegistry, flows_dir: Path, reloads: Reloads, caplog: pytest.LogCaptureFixture
) -> None:
    before = registry.get("nps")
    assert before is not None
    edit(flows_dir / "nps.yaml", "type: nps", "type: net_promoter")
    with caplog.at_level(logging.ERROR):
        errors = await next_reload(reloads, "nps.yaml")
    assert errors and errors[0].line == 8 and errors[0].path.endswith("nps.yaml")
    assert f"{flows_dir / 'nps.yaml'}:8:" in caplog.text
    assert "previous version keeps serving" in caplog.text
    assert registry.get("nps") is before
    edit(flows_dir / "nps.yaml", "type: net_promoter", "type: nps")  # the admin fixes it
    assert await next_reload(reloads, "nps.yaml") == []
    fixed = registry.get("nps")
    assert fixed is not None and fixed.version == before.version


async def test_a_survey_under_way_finishes_on_the_version_it_started_with(
    runtime: Runtime, adapter: RecordingAdapter, flows_dir: Path, reloads: Reloads
) -> None:
    await runtime.start_survey("csat", ANNA)
    edit(flows_dir / "csat.yaml", "What went wrong, and what", "Tell us what")
    assert await next_reload(reloads, "csat.yaml") == []
    no = next(b for row in adapter.last().rows for b in row if b.label == "No")
    await runtime.handle(Inbound(platform="console", kind="tap", user_id="anna",
                                 payload=no.payload))  # fmt: skip
    assert "What went wrong, and what could we have done better?" in adapter.last().text
    await runtime.start_survey("csat", Address(platform="console", user_id="boris"))
    yes_no = adapter.last()
    no = next(b for row in yes_no.rows for b in row if b.label == "No")
    await runtime.handle(Inbound(platform="console", kind="tap", user_id="boris",
                                 payload=no.payload))  # fmt: skip
    assert "Tell us what could we have done better?" in adapter.last().text
