"""What the HTTP API tests share: the token, settings on SQLite, a request body, and how a 422
names its fields."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bot.settings import MilestoneEvent, Settings, StorageConfig, SurveysConfig

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(tmp_path: Path, flows_dir: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "flows_dir": flows_dir,
        "storage": StorageConfig(url=f"sqlite:///{tmp_path / 'surveys.db'}"),
        "surveys": SurveysConfig(
            events={"ticket_solved": MilestoneEvent(flow="csat", delay=timedelta(hours=2))}
        ),
        "api_token": TOKEN,
    }
    return Settings(**(base | changes))


def survey(**fields: Any) -> dict[str, Any]:
    return {"flow": "csat", "platform": "telegram", "user": "1001"} | fields


def error_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [".".join(map(str, e["loc"])) for e in response.json()["detail"]]
