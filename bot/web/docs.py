"""``GET /docs``: the Swagger UI of the OpenAPI schema, working with no internet.

FastAPI's own page loads Swagger UI's JavaScript and CSS from a CDN, so offline it is blank.
Here the same page (:func:`fastapi.openapi.docs.get_swagger_ui_html`) points at copies served
by this app under ``/docs/assets/``, taken from the ``fastapi-offline`` package (it ships
Swagger UI 5, which reads the OpenAPI 3.1 schema FastAPI writes). Only the three files the
page needs are served, by name; the page has no favicon request to an outside host either.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
PREFIX = "/docs/assets"


def router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """The docs page and its assets; mount it on an app created with ``docs_url=None``."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/docs", response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} — API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
        )

    @routes.get(PREFIX + "/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in FILES:
            raise HTTPException(404, f"no docs asset {name!r}")
        return FileResponse(
            ASSETS / name,
            media_type=FILES[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return routes
