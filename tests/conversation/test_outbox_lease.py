"""``outbox.lease`` from config.yaml: how long a message the sender took is its own. After a
crash, a message the dead sender held goes out when this runs out (and that chat's later
messages wait behind it), so an installation can choose a shorter wait than 15 s."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.app import services
from bot.chat import Address, Prompt
from bot.conversation.config import OutboxConfig
from bot.settings import Settings, StorageConfig
from storage.base import OutboxMessage, utcnow
from tests.conftest import SHIPPED_FLOWS
from tests.conversation.test_sender_marks import HeldAdapter

ANNA = Address(platform="console", user_id="anna")


async def test_a_message_the_sender_holds_is_leased_for_the_configured_time(
    tmp_path: Path,
) -> None:
    settings = Settings(
        flows_dir=SHIPPED_FLOWS,
        storage=StorageConfig(url=f"sqlite:///{tmp_path / 'surveys.db'}"),
        outbox=OutboxConfig.model_validate({"lease": "3s"}),
    )
    async with services(settings) as svc:
        assert svc.sender is not None
        adapter = HeldAdapter()  # the send never returns: as if the process died mid-send
        svc.runtime.adapters["console"] = adapter
        prompt = Prompt(kind="question", session_id="s-anna", text="How likely...?")
        taken = utcnow()
        svc.sender.clock = lambda: taken  # the claim's time, exactly
        await svc.storage.outbox_put([OutboxMessage(address=ANNA, kind="question",
                                                    body=prompt.model_dump_json(),
                                                    created_at=taken)])  # fmt: skip
        svc.sender.start()
        try:
            await asyncio.wait_for(adapter.sending.wait(), 10)
            [held] = await svc.storage.outbox_recent()
            assert held.lease_until == taken + timedelta(seconds=3)  # not 15 s
        finally:
            adapter.release.set()
            await svc.sender.stop()


def test_the_outbox_lease_defaults_to_15_seconds() -> None:
    assert Settings().outbox.lease == timedelta(seconds=15)
