"""The HTTP API as a helpdesk integration sees it: httpx against the app, real SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Services
from bot.chat import Inbound
from bot.settings import ServerConfig
from bot.web.api import ApiTokenRequired, create_app
from tests.support.api_support import AUTH, error_fields, settings_for, survey
from tests.support.clock import FakeClock, TimedAdapter


async def test_without_the_right_bearer_token_nothing_is_sent(
    client: httpx.AsyncClient, telegram: TimedAdapter
) -> None:
    missing = await client.post("/api/v1/surveys", json=survey())
    wrong = await client.post(
        "/api/v1/surveys", json=survey(), headers={"Authorization": "Bearer guess"}
    )
    lookup = await client.get("/api/v1/surveys/anything")
    assert [missing.status_code, wrong.status_code, lookup.status_code] == [401, 401, 401]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert telegram.sent == []


async def test_a_helpdesk_sends_a_survey_and_gets_its_session_id(
    client: httpx.AsyncClient, telegram: TimedAdapter
) -> None:
    response = await client.post(
        "/api/v1/surveys", headers=AUTH,
        json=survey(context={"ticket_id": "T-1", "agent": "maria"}, locale="el-GR"),
    )  # fmt: skip
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "sent" and body["created"] and body["flow"] == "csat"
    assert response.headers["Location"] == f"/api/v1/surveys/{body['session_id']}"
    assert len(telegram.sent) == 1 and telegram.last().locale == "el"


async def test_mistakes_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    async def post(**fields: Any) -> httpx.Response:
        return await client.post("/api/v1/surveys", headers=AUTH, json=survey(**fields))

    unknown_flow = await post(flow="loyalty")
    assert error_fields(unknown_flow) == ["body.flow"]
    assert "available: ces, csat, nps" in unknown_flow.json()["detail"][0]["msg"]
    assert error_fields(await post(platform="whatsapp")) == ["body.platform"]
    assert error_fields(await post(platform="slack")) == ["body.platform"]
    assert error_fields(await post(send_at="tomorrow morning")) == ["body.send_at"]
    assert error_fields(await post(send_at="2026-03-02T10:00:00")) == ["body.send_at"]
    assert error_fields(await post(send_at="2999-01-01T00:00:00Z")) == ["body.send_at"]
    assert error_fields(await post(user="")) == ["body.user"]
    assert error_fields(await post(colour="red")) == ["body.colour"]


async def test_a_retried_request_with_the_same_key_sends_once(
    client: httpx.AsyncClient, telegram: TimedAdapter
) -> None:
    first = await client.post("/api/v1/surveys", headers=AUTH, json=survey(idempotency_key="T-7"))
    again = await client.post(
        "/api/v1/surveys", headers=AUTH | {"Idempotency-Key": "T-7"}, json=survey()
    )
    assert first.json()["session_id"] == again.json()["session_id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert again.json()["status"] == "sent" and len(telegram.sent) == 1
    elsewhere = await client.post(
        "/api/v1/surveys", headers=AUTH, json=survey(user="2002", idempotency_key="T-7")
    )
    assert elsewhere.status_code == 409 and "T-7" in elsewhere.json()["detail"]


async def test_a_customer_asked_recently_is_reported_as_throttled(
    client: httpx.AsyncClient, telegram: TimedAdapter
) -> None:
    await client.post("/api/v1/surveys", headers=AUTH, json=survey())
    response = await client.post("/api/v1/surveys", headers=AUTH, json=survey())
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "throttled" and body["session_id"] is None
    assert "throttle window of 30 days" in body["reason"]
    assert len(telegram.sent) == 1


async def test_a_scheduled_survey_reports_its_time_and_status(
    client: httpx.AsyncClient, svc: Services, clock: FakeClock, telegram: TimedAdapter
) -> None:
    at = clock() + timedelta(hours=3)
    response = await client.post(
        "/api/v1/surveys", headers=AUTH, json=survey(send_at=at.isoformat())
    )
    body = response.json()
    assert body["status"] == "scheduled" and body["send_at"] == at.isoformat().replace(
        "+00:00", "Z"
    )
    view = (await client.get(f"/api/v1/surveys/{body['session_id']}", headers=AUTH)).json()
    assert view["status"] == "scheduled" and view["sent_at"] is None
    clock.advance(hours=3)
    await svc.dispatcher.tick()
    view = (await client.get(f"/api/v1/surveys/{body['session_id']}", headers=AUTH)).json()
    assert view["status"] == "active" and view["current_question"] == "satisfied"
    assert len(telegram.sent) == 1


async def test_a_ticket_solved_event_becomes_a_csat_survey_two_hours_later(
    client: httpx.AsyncClient, svc: Services, clock: FakeClock, telegram: TimedAdapter
) -> None:
    event = {"event": "ticket_solved", "platform": "telegram", "user": "1001",
             "context": {"ticket_id": "T-42", "agent": "maria"}}  # fmt: skip
    response = await client.post("/api/v1/events", headers=AUTH, json=event)
    body = response.json()
    assert response.status_code == 202
    assert (body["status"], body["flow"], body["event"]) == ("scheduled", "csat", "ticket_solved")
    clock.advance(hours=2)
    await svc.dispatcher.tick()
    view = (await client.get(f"/api/v1/surveys/{body['session_id']}", headers=AUTH)).json()
    assert view["triggered_by"] == "event:ticket_solved" and view["context"]["ticket_id"] == "T-42"
    assert len(telegram.sent) == 1
    unknown = await client.post("/api/v1/events", headers=AUTH, json=event | {"event": "oops"})
    assert error_fields(unknown) == ["body.event"]
    assert "configured: ticket_solved" in unknown.json()["detail"][0]["msg"]


async def test_the_survey_view_shows_answers_so_far(
    client: httpx.AsyncClient, svc: Services, telegram: TimedAdapter
) -> None:
    body = (await client.post("/api/v1/surveys", headers=AUTH, json=survey())).json()
    no = next(b for row in telegram.last().rows for b in row if b.label == "No")
    await svc.runtime.handle(
        Inbound(platform="telegram", kind="tap", user_id="1001", payload=no.payload)
    )
    view = (await client.get(f"/api/v1/surveys/{body['session_id']}", headers=AUTH)).json()
    assert view["answers"] == {"satisfied": 0} and view["current_question"] == "what_went_wrong"
    missing = await client.get("/api/v1/surveys/nope", headers=AUTH)
    assert missing.status_code == 404


async def test_health_metrics_and_docs_need_no_token(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/surveys", headers=AUTH, json=survey())
    health = await client.get("/healthz")
    assert health.json() == {"status": "ok", "flows": ["ces", "csat", "nps"],
                             "platforms": ["telegram"], "reason": None}  # fmt: skip
    scraped = await client.get("/metrics")
    names = {f.name for f in text_string_to_metric_families(scraped.text)}
    assert {"surveybot_surveys_sent", "surveybot_survey_requests", "surveybot_send_failures",
            "surveybot_events_handled", "surveybot_handle_seconds"} <= names  # fmt: skip
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert {"/api/v1/surveys", "/api/v1/events", "/healthz", "/metrics"} <= set(schema["paths"])


async def test_the_api_refuses_to_start_open_beyond_loopback(
    tmp_path: Path, flows_dir: Path, svc: Services
) -> None:
    exposed = settings_for(tmp_path, flows_dir, api_token=None, server=ServerConfig(host="0.0.0.0"))
    with pytest.raises(ApiTokenRequired, match="SURVEYBOT_API_TOKEN"):
        create_app(Services(exposed, svc.storage, svc.registry, svc.runtime, svc.dispatcher))
    local = settings_for(tmp_path, flows_dir, api_token=None)
    app = create_app(Services(local, svc.storage, svc.registry, svc.runtime, svc.dispatcher))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        assert (await c.post("/api/v1/surveys", json=survey())).status_code == 202


async def test_platform_and_dashboard_routes_are_mounted(svc: Services) -> None:
    webhook = APIRouter()

    @webhook.post("/telegram/webhook")
    async def receive() -> dict[str, bool]:
        return {"ok": True}

    app = create_app(svc, routers=[webhook])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        assert (await c.post("/telegram/webhook")).json() == {"ok": True}
