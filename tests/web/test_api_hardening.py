"""A hostile helpdesk integration: reused idempotency keys under concurrency, impossible dates,
huge or unauthenticated bodies, non-JSON bodies, and the dashboard's security headers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import APIRouter, Request

from bot.app import Services
from bot.web.api import create_app
from bot.web.dashboard import router as dashboard_router
from bot.web.guard import BODY_LIMITS
from tests.support.api_support import AUTH, error_fields, survey
from tests.support.clock import TimedAdapter

ROOT = Path(__file__).resolve().parents[2]
LIMIT = dict(BODY_LIMITS)


async def test_200_concurrent_posts_of_two_customers_sharing_a_key_never_cross(
    client: httpx.AsyncClient, svc: Services, telegram: TimedAdapter
) -> None:
    async def post(user: str) -> tuple[str, httpx.Response]:
        body = survey(user=user, idempotency_key="zendesk-77")
        return user, await client.post("/api/v1/surveys", headers=AUTH, json=body)

    answers = await asyncio.gather(*(post(u) for _ in range(100) for u in ("A", "B")))
    accepted = [(u, r.json()["session_id"]) for u, r in answers if r.status_code == 202]
    assert {r.status_code for _, r in answers} <= {202, 409}
    owners = {u for u, _ in accepted}
    assert len(owners) == 1, "only the customer who got the key first is accepted"
    (owner,) = owners
    assert len({sid for _, sid in accepted}) == 1 and len(accepted) == 100
    loser = "B" if owner == "A" else "A"
    refused = [r for u, r in answers if u == loser]
    assert [r.status_code for r in refused] == [409] * 100
    assert all("zendesk-77" in r.json()["detail"] for r in refused)
    session = await svc.storage.session_by_key("zendesk-77")
    assert session is not None and session.user_id == owner
    assert [d.address.user_id for d in telegram.sent] == [owner]


async def test_a_key_reused_for_the_same_customer_with_another_context_is_409(
    client: httpx.AsyncClient, svc: Services
) -> None:
    first = await client.post(
        "/api/v1/surveys", headers=AUTH,
        json=survey(idempotency_key="T-8", context={"ticket_id": "T-8"}),
    )  # fmt: skip
    same = await client.post(
        "/api/v1/surveys", headers=AUTH,
        json=survey(idempotency_key="T-8", context={"ticket_id": "T-8"}),
    )  # fmt: skip
    other = await client.post(
        "/api/v1/surveys", headers=AUTH,
        json=survey(idempotency_key="T-8", context={"ticket_id": "T-9"}),
    )  # fmt: skip
    assert (first.status_code, same.status_code, other.status_code) == (202, 202, 409)
    assert "another context" in other.json()["detail"]
    session = await svc.storage.session_by_key("T-8")
    assert session is not None and session.context == {"ticket_id": "T-8"}


async def test_dates_beyond_what_utc_can_hold_are_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        response = await client.post("/api/v1/surveys", headers=AUTH, json=survey(send_at=moment))
        assert error_fields(response) == ["body.send_at"]
        assert "out of range" in response.json()["detail"][0]["msg"]
    event = {"event": "ticket_solved", "platform": "telegram", "user": "1",
             "occurred_at": "0001-01-01T00:00:00+14:00"}  # fmt: skip
    assert error_fields(await client.post("/api/v1/events", headers=AUTH, json=event)) == [
        "body.occurred_at"
    ]


class Chunks:
    """A request body sent in 64 KiB chunks, counting how many the server pulled."""

    def __init__(self, total: int) -> None:
        self.total, self.pulled = total, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.total):
            self.pulled += 1
            yield b"x" * 65536


async def test_an_unauthenticated_100_mb_post_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    body = Chunks(1600)  # 100 MiB
    response = await client.post(
        "/api/v1/surveys", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert body.pulled <= 1  # httpx may have the first chunk ready; the app read none


async def test_an_oversize_body_is_413_by_its_length_or_as_it_streams(
    client: httpx.AsyncClient, telegram: TimedAdapter
) -> None:
    declared = await client.post(
        "/api/v1/surveys", headers=AUTH | {"Content-Length": str(100 * 2**20)},
        content=Chunks(1),
    )  # fmt: skip
    assert declared.status_code == 413 and "at most" in declared.json()["detail"]
    streamed = Chunks(1600)  # no Content-Length: chunked
    response = await client.post("/api/v1/surveys", headers=AUTH, content=streamed)
    assert response.status_code == 413
    assert streamed.pulled <= LIMIT["/api/"] // 65536 + 2  # stopped at the limit, not 100 MiB
    assert telegram.sent == []
    fits = await client.post("/api/v1/surveys", headers=AUTH, json=survey())
    assert fits.status_code == 202


async def test_webhook_routes_get_the_same_limit_before_their_handler_runs(
    svc: Services,
) -> None:
    handled: list[int] = []
    routes = APIRouter()

    @routes.post("/telegram/webhook")
    @routes.post("/slack/events")
    async def webhook(request: Request) -> dict[str, int]:
        handled.append(len(await request.body()))
        return {"ok": 1}

    app = create_app(svc, routers=[routes])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        for path in ("/telegram/webhook", "/slack/events"):
            big = Chunks(512)  # 32 MiB
            response = await c.post(path, content=big)
            assert response.status_code == 413, path
            assert big.pulled <= LIMIT[path] // 65536 + 2
            assert (await c.post(path, content=b'{"update_id": 1}')).status_code == 200
    assert handled == [16, 16]


async def test_a_body_that_is_not_json_gets_what_the_docs_say(client: httpx.AsyncClient) -> None:
    docs = (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8")
    said = re.search(r"A body\s+that\s+is\s+not\s+JSON\s+is\s+`(\d{3})`", docs)
    assert said is not None, "docs/http-api.md says what a non-JSON body gets"
    response = await client.post(
        "/api/v1/surveys", headers=AUTH | {"Content-Type": "application/json"},
        content=b"flow=csat&user=1",
    )  # fmt: skip
    assert response.status_code == int(said[1])
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_dashboard_answers_carry_security_headers(svc: Services) -> None:
    app = create_app(svc, routers=[dashboard_router(svc)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        for path in ("/", "/api/v1/report"):
            response = await c.get(path, headers=AUTH)
            assert response.status_code == 200, path
            headers = response.headers
            assert "default-src 'none'" in headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer"


async def test_the_report_api_reads_since_like_the_cli_and_404s_an_unknown_flow(
    svc: Services,
) -> None:
    app = create_app(svc, routers=[dashboard_router(svc)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        recent = await c.get("/api/v1/report", params={"since": "30d"}, headers=AUTH)
        assert recent.status_code == 200, recent.text
        since = datetime.fromisoformat(recent.json()["since"])
        assert timedelta(days=29) < datetime.now(UTC) - since < timedelta(days=31)
        unknown = await c.get("/api/v1/report", params={"flow": "nope"}, headers=AUTH)
        assert unknown.status_code == 404
        assert "unknown flow 'nope'" in unknown.json()["detail"]
        assert "flows: ces, csat, nps" in unknown.json()["detail"]
