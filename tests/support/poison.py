"""What the poison tests share, on every platform: an inbox that gives up quickly, the log
lines it writes when it quarantines an event, and the admin's `surveybot inbox ...`."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.conversation.config import InboxConfig

# two tries 50 ms apart, then quarantined (the default waits minutes between tries)
QUICK_QUARANTINE = InboxConfig(attempts=2, backoff=(timedelta(milliseconds=50),))


def poison_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the inbox logged on quarantining events: one line each."""
    return [r for r in caplog.records if "quarantined" in r.getMessage()]


async def surveybot(*args: str) -> Result:
    """The admin types `surveybot ...` (its own event loop: in a thread)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def inbox_list(tmp_path: Path, storage_url: str) -> list[str]:
    """`surveybot inbox list` on that storage: one line per quarantined event."""
    config = tmp_path / "config.yaml"
    config.write_text(f"storage: {{url: '{storage_url}'}}\n", encoding="utf-8")
    listing = await surveybot("inbox", "list", "--config", str(config))
    assert listing.exit_code == 0, listing.output
    return listing.output.strip().splitlines()
