"""The HTTP app: trigger API, milestone events, survey status, health, metrics, OpenAPI docs.

Every survey request goes through :meth:`Dispatcher.request`; platform webhook
routes (``PlatformRunner.router()``) and the dashboard/report router are mounted from
``routers``. Route handlers reach the composed services through :func:`services_of`.

Errors follow FastAPI's validation shape everywhere, so a client parses one format::

    422 {"detail": [{"loc": ["body", "flow"], "msg": "unknown flow 'x'; ...", "type": "..."}]}

Authentication: ``Authorization: Bearer $SURVEYBOT_API_TOKEN`` on /api/v1/*. Without a token
the API is open only when the server listens on loopback; elsewhere :func:`create_app` refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from bot import metrics
from bot.app import Services
from bot.chat import Address, Platform
from bot.conversation.admission import (
    MAX_CONTEXT_KEYS,
    MAX_KEY_LENGTH,
    MAX_VALUE_LENGTH,
    IdempotencyConflict,
    TriggerResult,
)
from bot.conversation.runtime import UnknownFlow
from bot.settings import ConfigError
from bot.web import docs
from bot.web.guard import RequestGuard, token_matches
from storage.base import SessionRecord, SessionStatus

log = logging.getLogger(__name__)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_AHEAD = timedelta(days=366)  # the furthest a survey may be scheduled

Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH)]
Value = Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)]


def _representable(moment: datetime) -> datetime:
    """A time that exists in UTC (0001-01-01T00:00+14:00 does not: it would overflow)."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("date is out of range (years 1 to 9999 in UTC)") from None
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(_representable)]


class ApiTokenRequired(ConfigError):
    pass


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Addressee(_Body):
    platform: Platform = Field(description="telegram, slack (or console in console mode)")
    user: str = Field(min_length=1, max_length=64, description="the customer's platform id")
    chat: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="post in this group chat/channel, addressed to the customer; default: DM",
    )  # fmt: skip
    user_name: str | None = Field(default=None, max_length=128, description="shown in groups")
    locale: str | None = Field(
        default=None, max_length=35, description="e.g. el-GR; default: the platform's"
    )
    context: dict[Key, Value] = Field(
        default_factory=dict, max_length=MAX_CONTEXT_KEYS,
        description="placeholder values: ticket_id, agent, customer_name, company, ...",
    )  # fmt: skip
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="the same key returns the same session and sends nothing twice",
    )  # fmt: skip


class SurveyRequest(_Addressee):
    flow: str = Field(min_length=1, max_length=64, description="flow id, e.g. csat, nps, ces")
    send_at: Moment | None = Field(
        default=None, description="ISO 8601 with a timezone; default or past: send now"
    )


class EventRequest(_Addressee):
    event: str = Field(
        min_length=1, max_length=64, description="helpdesk event, e.g. ticket_solved"
    )
    occurred_at: Moment | None = Field(
        default=None, description="when it happened (the delay counts from here); default: now"
    )


class SurveyAccepted(BaseModel):
    session_id: str | None = Field(description="null when throttled")
    status: Literal["sent", "scheduled", "throttled", "failed"]
    reason: str | None = Field(default=None, description="why throttled, queued or failed")
    created: bool = Field(description="false: an earlier request with this key, or throttled")
    send_at: datetime | None = Field(default=None, description="when a scheduled survey goes")
    flow: str
    event: str | None = None


class SurveyView(BaseModel):
    id: str
    flow_id: str
    flow_version: str
    platform: str
    user_id: str
    chat_id: str | None
    locale: str
    status: SessionStatus
    triggered_by: str
    context: dict[str, str]
    answers: dict[str, int | str | None] = Field(description="question id -> answer so far")
    current_question: str | None = Field(description="the question being asked, if any")
    created_at: datetime
    send_at: datetime | None
    sent_at: datetime | None
    expires_at: datetime | None
    completed_at: datetime | None
    reminded: bool
    error: str | None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    flows: list[str]
    platforms: list[str]
    reason: str | None = None  # why it is unavailable (e.g. the database's own write error)


class Problem(BaseModel):
    detail: str


_bearer = HTTPBearer(auto_error=False, description="SURVEYBOT_API_TOKEN")
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Problem}}
_POST_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not text (undecodable bytes)"},
    409: {"model": Problem, "description": "the idempotency key was used for another request"},
    413: {"model": Problem, "description": "the body is over the size limit"},
}


def services_of(request: Request) -> Services:
    """The app's :class:`~bot.app.Services`: a dependency for any mounted router."""
    svc: Services = request.app.state.services
    return svc


def _invalid(field: str, message: str, kind: str, value: object = None) -> NoReturn:
    raise RequestValidationError(
        [{"loc": ("body", field), "msg": message, "type": kind, "input": value}]
    )


def create_app(svc: Services, routers: Sequence[APIRouter] = ()) -> FastAPI:
    settings = svc.settings
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not token and settings.server.host not in LOOPBACK:
        raise ApiTokenRequired(
            f"server.host is {settings.server.host}: set SURVEYBOT_API_TOKEN before exposing "
            "the API beyond loopback (127.0.0.1, ::1, localhost)"
        )
    if not token:
        log.warning("SURVEYBOT_API_TOKEN is not set: the API is open to local callers only")

    async def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if not token:
            return
        given = f"Bearer {credentials.credentials}" if credentials else ""
        if not token_matches(given, token):
            raise HTTPException(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    app = FastAPI(
        title="surveybot",
        version="1",
        description="Trigger CSAT/NPS/CES surveys in Telegram and Slack; read their status.",
        docs_url=None,  # served by bot.web.docs from local assets: works offline
        redoc_url=None,
    )
    app.include_router(docs.router(app.title))
    app.state.services = svc
    app.add_middleware(RequestGuard, token=token)
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(authorized)], responses=_AUTH_ERRORS)

    @api.post(
        "/surveys",
        status_code=202,
        response_model=SurveyAccepted,
        responses=_POST_ERRORS,
    )
    async def post_survey(
        body: SurveyRequest,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> SurveyAccepted:
        """Send a survey now or at ``send_at``; 202 with the session id and its status."""
        _check_flow(svc, "flow", body.flow)
        _check_platform(svc, body.platform)
        now = svc.dispatcher.clock()
        if body.send_at is not None and body.send_at - now > MAX_AHEAD:
            _invalid("send_at", f"send_at is more than {MAX_AHEAD.days} days ahead",
                     "too_far_ahead", body.send_at.isoformat())  # fmt: skip
        key = _key(body.idempotency_key, idempotency_key)
        result = await _trigger(svc, body, body.flow, body.send_at, key, "api")
        return await _accepted(svc, response, result, body.flow, None)

    @api.post(
        "/events",
        status_code=202,
        response_model=SurveyAccepted,
        responses=_POST_ERRORS,
    )
    async def post_event(
        body: EventRequest,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> SurveyAccepted:
        """A helpdesk milestone (config ``surveys.events``) becomes its flow after its delay."""
        mapping = settings.surveys.events.get(body.event)
        if mapping is None:
            known = ", ".join(sorted(settings.surveys.events)) or "(none configured)"
            _invalid("event", f"unknown event {body.event!r}; configured: {known}",
                     "unknown_event", body.event)  # fmt: skip
        _check_flow(svc, "event", mapping.flow)
        _check_platform(svc, body.platform)
        now = svc.dispatcher.clock()
        occurred = body.occurred_at or now
        if occurred - now > timedelta(days=1):
            _invalid("occurred_at", "occurred_at lies in the future", "future_event",
                     occurred.isoformat())  # fmt: skip
        send_at = occurred + mapping.delay if occurred + mapping.delay > now else None
        key = _key(body.idempotency_key, idempotency_key)
        result = await _trigger(svc, body, mapping.flow, send_at, key, f"event:{body.event}")
        return await _accepted(svc, response, result, mapping.flow, body.event)

    @api.get(
        "/surveys/{session_id}",
        response_model=SurveyView,
        responses={404: {"model": Problem, "description": "no such survey"}},
    )
    async def get_survey(session_id: str) -> SurveyView:
        """A survey's status and its answers so far."""
        session = await svc.storage.get_session(session_id)
        if session is None:
            raise HTTPException(404, f"no survey {session_id!r}")
        return await _view(svc, session)

    app.include_router(api)

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}})
    async def healthz(response: Response) -> Health:
        """Liveness and readiness: storage answers, its writes work (503 with the reason while
        they fail: events are then not acknowledged), which flows/platforms are in force."""
        status: Literal["ok", "unavailable"] = "ok"
        reason = None
        try:
            await svc.storage.get_session("healthz")
        except Exception as exc:
            log.exception("health check: storage is unavailable")
            status, reason = "unavailable", f"storage does not answer: {exc}"
        writes = svc.storage.health()
        if not writes.ok:
            status, reason = "unavailable", f"storage writes fail: {writes.error}"
        if status != "ok":
            response.status_code = 503
        return Health(status=status, flows=svc.registry.ids(),
                      platforms=sorted(svc.runtime.adapters), reason=reason)  # fmt: skip

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    async def prometheus() -> Response:
        """Events handled, answers recorded, surveys sent, send failures, latency, jobs."""
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


def _check_flow(svc: Services, field: str, flow_id: str) -> None:
    if svc.registry.get(flow_id) is None:
        available = ", ".join(svc.registry.ids()) or "(none loaded)"
        _invalid(field, f"unknown flow {flow_id!r}; available: {available}", "unknown_flow",
                 flow_id)  # fmt: skip


def _check_platform(svc: Services, platform: str) -> None:
    if platform not in svc.runtime.adapters:
        enabled = ", ".join(sorted(svc.runtime.adapters)) or "none"
        _invalid("platform", f"platform {platform!r} is not enabled on this server (enabled: "
                 f"{enabled}); set its token in the environment", "platform_disabled",
                 platform)  # fmt: skip


def _key(in_body: str | None, in_header: str | None) -> str | None:
    if in_body and in_header and in_body != in_header:
        _invalid("idempotency_key", "the Idempotency-Key header and the body's idempotency_key "
                 "differ", "key_mismatch", in_body)  # fmt: skip
    return in_body or in_header


async def _trigger(
    svc: Services,
    body: _Addressee,
    flow_id: str,
    send_at: datetime | None,
    key: str | None,
    triggered_by: str,
) -> TriggerResult:
    address = Address(
        platform=body.platform, user_id=body.user, chat_id=body.chat, user_name=body.user_name
    )
    try:
        return await svc.dispatcher.request(
            flow_id, address, body.context, triggered_by=triggered_by, locale=body.locale,
            send_at=send_at, idempotency_key=key,
        )  # fmt: skip
    except UnknownFlow as exc:  # withdrawn by a reload since the check
        _invalid("flow", str(exc), "unknown_flow", flow_id)
    except IdempotencyConflict as exc:  # another flow, customer or context
        raise HTTPException(409, str(exc)) from None


async def _accepted(
    svc: Services, response: Response, result: TriggerResult, flow_id: str, event: str | None
) -> SurveyAccepted:
    send_at = None
    if result.session_id:
        response.headers["Location"] = f"/api/v1/surveys/{result.session_id}"
        if result.status == "scheduled":
            session = await svc.storage.get_session(result.session_id)
            send_at = session.send_at if session else None
    return SurveyAccepted(
        session_id=result.session_id,
        status=result.status,
        reason=result.reason,
        created=result.created,
        send_at=send_at,
        flow=flow_id,
        event=event,
    )


async def _view(svc: Services, s: SessionRecord) -> SurveyView:
    question = None
    if s.state.current is not None:
        try:
            question = (await svc.runtime.flow_for(s)).questions[s.state.current].id
        except (UnknownFlow, IndexError):
            log.warning("session %s: its flow version %s is not stored", s.id, s.flow_version)
    return SurveyView(
        id=s.id, flow_id=s.flow_id, flow_version=s.flow_version, platform=s.platform,
        user_id=s.user_id, chat_id=s.chat_id, locale=s.locale, status=s.status,
        triggered_by=s.triggered_by, context=s.context, answers=dict(s.state.answers),
        current_question=question, created_at=s.created_at, send_at=s.send_at,
        sent_at=s.sent_at, expires_at=s.expires_at, completed_at=s.completed_at,
        reminded=s.reminded, error=s.error,
    )  # fmt: skip
