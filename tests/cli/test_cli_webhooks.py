"""`surveybot webhooks` and the `webhooks:` config as an admin meets them: the dead letters
listed, redelivered once the helpdesk is back; a bad `webhooks:` section refused by name."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from typer.testing import CliRunner

from bot.cli.core import app
from bot.conversation.webhook_delivery import WebhookDelivery
from bot.conversation.webhooks import Endpoint, WebhooksConfig
from bot.settings import load_settings
from storage.sqlite.backend import SQLiteStorage
from tests.support.webhook_events import owe_an_expired_survey_event

runner = CliRunner()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def install(tmp_path: Path, flows_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SURVEYBOT_WEBHOOK_SECRET_CRM", "whsec_crm")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"flows_dir: {flows_dir}\n"
        f'storage: {{url: "sqlite:///{tmp_path / "surveys.db"}"}}\n'
        "webhooks:\n"
        "  retry_for: 1m\n"
        "  endpoints:\n"
        f"    crm: {{url: 'http://127.0.0.1:{closed_port()}/in', events: [survey.expired]}}\n",
        encoding="utf-8",
    )
    return config


async def expire_one_survey_while_the_crm_is_down(config: Path) -> None:
    settings = load_settings(config)
    storage = SQLiteStorage(settings.storage.url)
    await storage.open()
    await owe_an_expired_survey_event(storage, settings.webhooks)
    delivery = WebhookDelivery(storage, settings.webhooks.model_copy(
        update={"first_retry": timedelta(minutes=2)}))  # fmt: skip
    assert await delivery.deliver_due() == 1  # refused; the next try would be past retry_for
    await storage.close()


async def deliver_to(config: Path) -> list[bytes]:
    got: list[bytes] = []

    async def accept(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response(status=200)

    app_ = web.Application()
    app_.router.add_post("/in", accept)
    server = TestServer(app_, host="127.0.0.1")
    await server.start_server()
    settings = load_settings(config)
    fixed = WebhooksConfig(endpoints={"crm": Endpoint(url=str(server.make_url("/in")),
                                                      events=["survey.expired"])})  # fmt: skip
    storage = SQLiteStorage(settings.storage.url)
    await storage.open()
    await WebhookDelivery(storage, fixed).deliver_due()
    await storage.close()
    await server.close()
    return got


def test_a_dead_delivery_is_listed_and_redelivered_when_the_crm_is_back(install: Path) -> None:
    asyncio.run(expire_one_survey_while_the_crm_is_down(install))
    failures = runner.invoke(app, ["webhooks", "failures", "-c", str(install)])
    assert failures.exit_code == 0, failures.output
    assert "dead" in failures.output and "crm survey.expired evt_" in failures.output
    assert "ConnectError" in failures.output
    row_id = failures.output.split()[0].lstrip("#")
    redo = runner.invoke(app, ["webhooks", "redeliver", row_id, "-c", str(install)])
    assert redo.exit_code == 0 and "queued for redelivery" in redo.output
    [body] = asyncio.run(deliver_to(install))
    assert b'"type":"survey.expired"' in body and b'"session_id":"s-expired"' in body
    listed = runner.invoke(app, ["webhooks", "list", "-c", str(install)])
    assert f"#{row_id} sent" in listed.output and "HTTP 200" in listed.output
    again = runner.invoke(app, ["webhooks", "redeliver", "999", "-c", str(install)])
    assert again.exit_code == 1 and "no dead or sent webhook delivery" in again.output


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ("{endpoints: {crm: {url: 'http://h/x', events: [answer.recorded]}}}",
         "SURVEYBOT_WEBHOOK_SECRET_CRM"),
        ("{endpoints: {zd: {url: 'http://h/x', events: [ticket.closed]}}}", "events"),
        ("{endpoints: {zd: {url: 'ftp://h/x', events: [answer.recorded]}}}", "url"),
        ("{endpoints: {zd: {url: 'https://h/x', events: []}}}", "events"),
    ],
)  # fmt: skip
def test_a_bad_webhooks_section_is_refused_naming_the_key(
    install: Path, section: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SURVEYBOT_WEBHOOK_SECRET_CRM")
    monkeypatch.setenv("SURVEYBOT_WEBHOOK_SECRET_ZD", "whsec_zd")
    text = install.read_text(encoding="utf-8").split("webhooks:")[0]
    install.write_text(text + f"webhooks: {section}\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "-c", str(install)])
    assert result.exit_code == 2
    assert "webhooks" in result.output and named in result.output, result.output
