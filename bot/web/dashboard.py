"""The dashboard (``GET /``) and the report API (``GET /api/v1/report``), and the static HTML
copy `surveybot report --html FILE` writes.

Both routes take the same filters in the query string: ``flow``, ``period`` (``7d``, ``30d``,
``90d``, ``365d`` or ``all``; default 30d), or ``since``/``until`` (ISO 8601, UTC unless they
say otherwise, or a duration ago such as ``30d`` like the CLI; they win over ``period``),
``platform`` and ``by`` (platform, agent, locale, channel, week; default platform); the API also
``themes=true`` (the dashboard always shows the comment themes). The page is rendered on the
server (Jinja2, charts as inline SVG from
matplotlib): no JavaScript, no CDN, and the static copy opens offline.

Access: with ``SURVEYBOT_API_TOKEN`` set, both routes want it, like the rest of /api/v1: as
``Authorization: Bearer <token>``, or, so a browser can open the page, as the password of HTTP
Basic authentication (any user name). Without a token the server only listens on loopback.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from bot.app import Services
from bot.reports.build import Report, build_report
from bot.reports.model import DEFAULT_PERIOD, period_start
from bot.reports.page import Form, render_html
from bot.survey.flow import parse_duration
from storage.base import utcnow
from storage.reporting import ReportQuery, SegmentBy


def query_from(
    *,
    flow: str | None,
    period: str | None,
    since: str | None,
    until: str | None,
    platform: str | None,
    by: SegmentBy | None,
    now: datetime,
) -> ReportQuery:
    """Filters from a query string; empty form fields mean "all". A filter that makes no sense
    is a 422 in FastAPI's validation shape, naming the parameter."""
    start, end = _moment("since", since, now), _moment("until", until, now)
    if start is None and period:
        try:
            start = period_start(period, now)
        except (ValueError, OverflowError) as exc:
            _invalid("period", f"{exc}; or use 'all'", period)
    if start and end and start >= end:
        _invalid("until", "until must be later than since", until)
    return ReportQuery(
        flow_id=flow or None, since=start, until=end, platform=platform or None, by=by, now=now
    )


def _moment(name: str, text: str | None, now: datetime) -> datetime | None:
    """An ISO 8601 date or date-time (UTC unless it says otherwise), or a duration ago such as
    ``30d`` (as ``surveybot report --since 30d``)."""
    if text is None:
        return None
    try:
        return now - parse_duration(text)
    except (ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        _invalid(name, "expected an ISO 8601 date-time such as 2024-03-01T00:00:00Z or a "
                 "duration ago such as 30d", text)  # fmt: skip


def _invalid(name: str, message: str, value: str | None) -> NoReturn:
    raise RequestValidationError(
        [{"loc": ("query", name), "msg": message, "type": "value_error", "input": value}]
    )


Flow = Annotated[str | None, Query(description="only this flow id")]
Period = Annotated[str, Query(description="7d, 30d, 90d, 365d (any duration) or all")]
Since = Annotated[
    str | None,
    Query(
        description="ISO 8601 start, inclusive (wins over period)",
        json_schema_extra={"format": "date-time"},
    ),
]
Until = Annotated[
    str | None,
    Query(description="ISO 8601 end, exclusive", json_schema_extra={"format": "date-time"}),
]
PlatformQ = Annotated[str | None, Query(description="telegram, slack or console")]
By = Annotated[
    SegmentBy | None, Query(description="segment by platform, agent, locale, channel or week")
]


def _authorizer(svc: Services) -> Callable[[str | None], Awaitable[None]]:
    token = svc.settings.api_token.get_secret_value() if svc.settings.api_token else ""

    async def authorized(authorization: Annotated[str | None, Header()] = None) -> None:
        if token and not _matches(authorization or "", token):
            raise HTTPException(
                401,
                "missing or wrong token (bearer, or basic auth password)",
                headers={"WWW-Authenticate": 'Basic realm="surveybot"'},
            )

    return authorized


def _matches(header: str, token: str) -> bool:
    scheme, _, value = header.partition(" ")
    given = value.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(given.encode(), token.encode())


def router(svc: Services) -> APIRouter:
    """``GET /`` (the dashboard) and ``GET /api/v1/report`` (the same figures as JSON)."""
    routes = APIRouter(tags=["report"], dependencies=[Depends(_authorizer(svc))])

    async def report_for(query: ReportQuery) -> Report:
        return await build_report(svc.storage, query, svc.registry, now=query.now,
                                  alerts=bool(svc.settings.alerts))  # fmt: skip

    @routes.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(
        flow: Flow = None,
        period: Period = DEFAULT_PERIOD,
        since: Since = None,
        until: Until = None,
        platform: PlatformQ = None,
        by: By = "platform",
    ) -> HTMLResponse:
        query = query_from(
            flow=flow,
            period=period,
            since=since,
            until=until,
            platform=platform,
            by=by,
            now=utcnow(),
        ).model_copy(update={"themes": True})
        report = await report_for(query)
        flows = sorted({*svc.registry.ids(), *(s.flow_id for s in report.scores)},
                       key=report.flow_name)  # fmt: skip
        form = Form(
            flows=flows,
            flow=query.flow_id,
            period=period,
            platform=query.platform,
            by=by or "platform",
        )
        return HTMLResponse(await run_in_threadpool(render_html, report, form))

    @routes.get(
        "/api/v1/report",
        response_model=Report,
        responses={
            401: {"description": "SURVEYBOT_API_TOKEN is set and was not given"},
            404: {"description": "an unknown flow: not loaded and nothing stored for it"},
        },
    )
    async def report_api(
        flow: Flow = None,
        period: Period = "all",
        since: Since = None,
        until: Until = None,
        platform: PlatformQ = None,
        by: By = None,
        themes: Annotated[bool, Query(description="also the comment themes per flow")] = False,
    ) -> Report:
        """Every score with its n and 95% interval, compared with the previous period (and a
        segment with everyone else), per flow and question, per segment and week; response
        rate, drop-off per question, distributions, latest comments, comment themes."""
        query = query_from(
            flow=flow,
            period=period,
            since=since,
            until=until,
            platform=platform,
            by=by,
            now=utcnow(),
        )
        report = await report_for(query.model_copy(update={"themes": themes}))
        if flow and svc.registry.get(flow) is None and not (report.scores or report.response):
            known = ", ".join(svc.registry.ids()) or "(none loaded)"
            raise HTTPException(404, f"unknown flow {flow!r}: not loaded and nothing stored "
                                f"for it; flows: {known}")  # fmt: skip
        return report

    return routes
