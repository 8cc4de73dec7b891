"""`surveybot send` and `surveybot invite` as an admin types them (typer's CliRunner, real
SQLite in a temporary install)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import run as serve
from bot.app import Services
from bot.cli.core import app
from bot.platforms.base import PlatformRunner
from storage.base import Job, SessionRecord, utcnow
from storage.sqlite.backend import SQLiteStorage
from tests.support.recording import RecordingAdapter

runner = CliRunner()


@pytest.fixture
def install(tmp_path: Path, flows_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TELEGRAM_TOKEN", "SLACK_BOT_TOKEN", "API_TOKEN"):
        monkeypatch.delenv(f"SURVEYBOT_{name}", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"flows_dir: {flows_dir}\n"
        f'storage: {{url: "sqlite:///{tmp_path / "surveys.db"}"}}\n'
        "telegram: {bot_username: acme_feedback_bot}\n",
        encoding="utf-8",
    )
    return config


def stored(config: Path) -> list[tuple[SessionRecord, list[Job]]]:
    async def read() -> list[tuple[SessionRecord, list[Job]]]:
        storage = SQLiteStorage(f"sqlite:///{config.parent / 'surveys.db'}")
        await storage.open()
        try:
            rows = await storage.conn.all("SELECT id FROM sessions ORDER BY created_at")
            out = []
            for (sid,) in rows:
                session = await storage.get_session(sid)
                assert session is not None
                out.append((session, await storage.pending_jobs(sid)))
            return out
        finally:
            await storage.close()

    return asyncio.run(read())


def test_send_in_an_hour_leaves_a_job_for_the_running_server(
    install: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEYBOT_TELEGRAM_TOKEN", "123:abc")  # the running server's bot
    result = runner.invoke(app, ["send", "csat", "--to", "telegram:42", "--in", "1h",
                                 "--ctx", "ticket_id=T-5", "--config", str(install)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scheduled csat for telegram:42" in result.output
    [(session, jobs)] = stored(install)
    assert session.status == "scheduled" and session.context == {"ticket_id": "T-5"}
    assert [j.kind for j in jobs] == ["send"] and session.send_at == jobs[0].run_at


def test_send_now_uses_the_platform_adapter_without_starting_it(
    install: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    telegram = RecordingAdapter(platform="telegram")

    class Runner:
        adapter = telegram

        def router(self) -> None:
            return None

        async def start(self) -> None:
            raise AssertionError("`send` must not start polling")

        async def stop(self) -> None:
            pass

    def runners(svc: Services) -> list[PlatformRunner]:
        svc.runtime.adapters["telegram"] = telegram
        return [Runner()]

    monkeypatch.setattr(serve, "platform_runners", runners)
    args = ["send", "nps", "--to", "telegram:42", "--config", str(install)]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "throttled" in again.output
    assert [p.kind for p in telegram.prompts()] == ["question"]


def test_send_now_to_a_platform_that_is_not_configured_says_which_token(install: Path) -> None:
    result = runner.invoke(app, ["send", "csat", "--to", "slack:U1", "--config", str(install)])
    assert result.exit_code == 2 and "SURVEYBOT_SLACK_BOT_TOKEN" in result.output
    assert stored(install) == []


def test_send_mistakes_are_explained(install: Path) -> None:
    unknown = runner.invoke(app, ["send", "loyalty", "--to", "telegram:1", "--in", "1h",
                                  "--config", str(install)])  # fmt: skip
    assert unknown.exit_code == 2 and "unknown flow 'loyalty'" in unknown.output
    both = runner.invoke(app, ["send", "csat", "--to", "telegram:1", "--in", "1h",
                               "--at", "2026-05-01T09:00Z", "--config", str(install)])  # fmt: skip
    assert both.exit_code == 2 and "not both" in both.output


def test_invite_prints_a_token_and_its_telegram_link(install: Path) -> None:
    result = runner.invoke(app, ["invite", "nps", "--ctx", "ticket_id=T-9",
                                 "--config", str(install)])  # fmt: skip
    assert result.exit_code == 0, result.output
    token, link = result.output.split()[:2]
    assert link == f"https://t.me/acme_feedback_bot?start={token}"

    async def consume() -> tuple[str, dict[str, str]] | None:
        storage = SQLiteStorage(f"sqlite:///{install.parent / 'surveys.db'}")
        await storage.open()
        try:
            return await storage.consume_invite(token, utcnow())
        finally:
            await storage.close()

    assert asyncio.run(consume()) == ("nps", {"ticket_id": "T-9"})


@pytest.mark.parametrize("when", [[], ["--in", "1m"], ["--at", "2030-01-01T09:00Z"]])
def test_a_platform_without_a_token_is_refused_now_and_later_alike(
    install: Path, when: list[str]
) -> None:
    result = runner.invoke(app, ["send", "nps", "--to", "telegram:900", *when,
                                 "--config", str(install)])  # fmt: skip
    assert result.exit_code == 2
    assert "telegram is not configured: set SURVEYBOT_TELEGRAM_TOKEN" in result.output
    assert "scheduled" not in result.output and stored(install) == []


def test_sending_to_the_console_names_no_made_up_variable(install: Path) -> None:
    now = runner.invoke(app, ["send", "nps", "--to", "console:root", "--config", str(install)])
    assert now.exit_code == 2 and "CONSOLE_TOKEN" not in now.output
    assert "surveybot try FLOW" in now.output and stored(install) == []
    later = runner.invoke(app, ["send", "nps", "--to", "console:root", "--in", "1m",
                                "--config", str(install)])  # fmt: skip
    assert later.exit_code == 0 and "scheduled nps for console:root" in later.output


def test_a_reused_key_for_another_customer_is_refused(install: Path) -> None:
    args = ["send", "csat", "--in", "1h", "--key", "T-1", "--config", str(install)]
    assert runner.invoke(app, [*args, "--to", "console:a"]).exit_code == 0
    other = runner.invoke(app, [*args, "--to", "console:b"])
    assert other.exit_code == 1 and "'T-1' was already used" in other.output
