"""The HTTP app ``surveybot run`` serves: the API, every platform runner's routes (Telegram
webhook, Slack events) and the dashboard, assembled here so that the process wiring in
:mod:`bot.run` never touches the web framework."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from bot.app import Services
from bot.platforms.base import PlatformRunner
from bot.web.api import create_app


def http_app(svc: Services, runners: Sequence[PlatformRunner] = ()) -> FastAPI:
    """Raises ConfigError (ApiTokenRequired) when the API would be exposed without a token."""
    from bot.web.dashboard import router as dashboard_router  # matplotlib: only when serving

    routers = [r for r in (runner.router() for runner in runners) if r is not None]
    return create_app(svc, routers=[*routers, dashboard_router(svc)])
