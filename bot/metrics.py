"""Prometheus metrics, exported at GET /metrics. One registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "surveybot_events_handled",
    "Platform events handled, by platform and outcome",
    ["platform", "outcome"],
    registry=REGISTRY,
)
ANSWERS = Counter(
    "surveybot_answers_recorded",
    "Answers committed to storage, by flow and metric",
    ["flow", "metric"],
    registry=REGISTRY,
)
SENT = Counter(
    "surveybot_surveys_sent", "Surveys whose first question was delivered", ["platform", "flow"],
    registry=REGISTRY,
)  # fmt: skip
SEND_FAILURES = Counter(
    "surveybot_send_failures",
    "Messages the platform refused or that could not be delivered",
    ["platform", "kind"],
    registry=REGISTRY,
)
HANDLE_SECONDS = Histogram(
    "surveybot_handle_seconds",
    "Time to handle one inbound event, commit included",
    ["platform"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SURVEY_REQUESTS = Counter(
    "surveybot_survey_requests",
    "Survey requests (API, events, CLI, staff commands) by source and outcome: sent, scheduled,"
    " throttled, failed, duplicate (an idempotency key seen before)",
    ["source", "outcome"],
    registry=REGISTRY,
)
JOBS = Counter(
    "surveybot_jobs",
    "Dispatcher jobs run, by kind (send, remind, expire) and outcome",
    ["kind", "outcome"],
    registry=REGISTRY,
)
INBOX_EVENTS = Counter(
    "surveybot_inbox_events",
    "Platform events taken by the inbox, by how: handled first and stored with their answer"
    " (first), or stored first and handled by the worker (stored)",
    ["platform", "path"],
    registry=REGISTRY,
)
INBOX_QUARANTINED = Counter(
    "surveybot_inbox_quarantined",
    "Platform events that could not be parsed or handled and were set aside (surveybot inbox)",
    ["platform"],
    registry=REGISTRY,
)
