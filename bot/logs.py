"""Logging setup: readable text for people, one JSON object per line for log shippers."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Literal

from pythonjsonlogger.json import JsonFormatter


def configure(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", file: Path | None = None
) -> None:
    """Logs to stderr, or appended to ``file``."""
    handler: logging.Handler = (
        logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler(sys.stderr)
    )
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "aiosqlite", "slack_bolt", "slack_sdk", "telegram.ext"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
