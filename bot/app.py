"""Composition: settings -> storage, flows, runtime, adapters. Used by the CLI and the server."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.conversation.alerts import Alerts, check_alerts
from bot.conversation.budget import Budget
from bot.conversation.dispatch import Dispatcher
from bot.conversation.followup_desk import FollowupDesk
from bot.conversation.inbox import Inbox
from bot.conversation.runtime import Runtime
from bot.conversation.sender import Sender
from bot.conversation.webhooks import WebhookEvents
from bot.settings import Settings
from bot.survey.loader import FlowRegistry
from storage import open_storage
from storage.base import Storage

log = logging.getLogger(__name__)
# Bench-only, not configuration (bench/README.md): "1" turns the inbox and the outbox off, so
# events are handled as they arrive and owed messages are sent at once, with none of the
# durability promises: what bench/pipeline_bench.py --queues-off measures their cost against.
BENCH_NO_QUEUES = "SURVEYBOT_BENCH_NO_QUEUES"


@dataclass
class Services:
    settings: Settings
    storage: Storage
    registry: FlowRegistry
    runtime: Runtime
    dispatcher: Dispatcher
    inbox: Inbox = field(default_factory=Inbox)
    sender: Sender | None = None
    desk: FollowupDesk | None = None  # the buttons on detractor alerts


@asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[Services]:
    """Open storage and load flows (broken files are logged and skipped); close on exit."""
    storage = open_storage(settings.storage.url)
    await storage.open()
    try:
        registry = FlowRegistry(settings.flows_dir)
        for error in registry.load_all():
            log.error("%s", error)
        hooks = WebhookEvents(settings.webhooks) if settings.webhooks.endpoints else None
        alerts = Alerts(settings.alerts) if settings.alerts else None
        runtime = Runtime(registry, storage, default_expiry=settings.surveys.expires_after,
                          webhooks=hooks, alerts=alerts)  # fmt: skip
        queues = os.environ.get(BENCH_NO_QUEUES) != "1"
        if queues:
            budgets = {"telegram": Budget(settings.telegram.rate_limit.limits()),
                       "slack": Budget(settings.slack.rate_limit.limits())}  # fmt: skip
            runtime.sender = Sender(
                storage, runtime.adapters, budgets, lease=settings.outbox.lease,
                on_sent=runtime.record_delivery, on_dead=runtime.record_dead,
            )  # fmt: skip
        else:
            log.warning("%s=1: inbox and outbox off (a benchmark's baseline)", BENCH_NO_QUEUES)
        staff = {"telegram": {str(i) for i in settings.staff.telegram},
                 "slack": set(settings.staff.slack)}  # fmt: skip
        wake = runtime.sender.wake if runtime.sender is not None else None
        desk = FollowupDesk(storage, staff, runtime.adapters, hooks, wake)
        dispatcher = Dispatcher(runtime, storage, settings.surveys)
        inbox = Inbox(storage if queues else None, settings.inbox)
        yield Services(settings, storage, registry, runtime, dispatcher, inbox, runtime.sender,
                       desk)  # fmt: skip
    finally:
        await storage.close()


def alert_problems(svc: Services) -> list[str]:
    """What is wrong with ``alerts:`` given the flows loaded and the platforms that run."""
    flows = {fid: flow for fid in svc.registry.ids() if (flow := svc.registry.get(fid))}
    return check_alerts(svc.settings.alerts, flows, svc.settings.platforms())
