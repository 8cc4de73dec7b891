"""Schemathesis against the served OpenAPI schema: no request, however odd, gets a 5xx, and
every answer matches the schema (status codes, content types, bodies, headers).

The app runs under uvicorn on 127.0.0.1 in a thread with its own event loop (storage, runtime
and a recording Telegram adapter live there). The run is bounded: 30 valid and 30
invalid requests per operation. ``positive_data_acceptance`` is left out on purpose: a flow id
that fits the schema may still not be loaded, and the API rightly answers 422 naming it.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.app import services  # noqa: E402
from bot.settings import MilestoneEvent, Settings, StorageConfig, SurveysConfig  # noqa: E402
from bot.web.api import create_app  # noqa: E402
from tests.conftest import SHIPPED_FLOWS  # noqa: E402
from tests.support.recording import RecordingAdapter  # noqa: E402

TOKEN = "fuzz-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("schemathesis")
    shutil.copytree(SHIPPED_FLOWS, root / "flows", ignore=shutil.ignore_patterns("*.py"))
    config = Settings(
        flows_dir=root / "flows",
        storage=StorageConfig(url=f"sqlite:///{root / 'surveys.db'}"),
        surveys=SurveysConfig(events={"ticket_solved": MilestoneEvent(flow="csat")}),
        api_token=TOKEN,
    )
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        async with services(config) as svc:
            svc.runtime.adapters["telegram"] = RecordingAdapter(platform="telegram")
            server = uvicorn.Server(
                uvicorn.Config(create_app(svc), host="127.0.0.1", port=0, log_config=None)
            )
            holder["server"] = server
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
                await asyncio.sleep(0.01)
            holder["port"] = server.servers[0].sockets[0].getsockname()[1] if server.started else 0
            ready.set()
            await task

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30) and holder["port"], "the server did not start"
    yield f"http://127.0.0.1:{holder['port']}"
    holder["server"].should_exit = True
    thread.join(30)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_the_api_honours_its_schema(base_url: str, mode: str) -> None:
    # schemathesis.pytest.from_fixture does not run under pytest 9 (it reads the private
    # Function._nodeid), so the cases come from its Hypothesis strategies, per operation.
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    generation = schemathesis.GenerationMode(mode)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /api/v1/surveys", "POST /api/v1/events", "GET /api/v1/surveys/{session_id}",
        "GET /healthz", "GET /metrics",
    }  # fmt: skip
    for operation in operations:
        inputs = [operation.body, operation.query, operation.headers, operation.path_parameters]
        if mode == "negative" and not any(len(group) for group in inputs):
            continue  # nothing to get wrong in GET /healthz or GET /metrics

        @given(case=operation.as_strategy(generation_mode=generation))
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def call(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)

        call()
