"""`surveybot inbox`: the platform events set aside because they could not be parsed or
handled (quarantined after a few tries), and what to do with them: ``list``, ``retry ID`` (put
it back in line: a running ``surveybot run`` handles it within seconds) and ``drop ID``.

The listing shows the event's id, platform, when it came, attempts and the error; never the
payload (the customer's text), which ``--show-payload`` prints for one event on request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from bot.cli.common import ConfigOpt, app, err, out, run_async, settings_from
from storage import open_storage
from storage.base import InboxEvent, Storage, iso, utcnow

inbox_app = typer.Typer(
    name="inbox",
    help="Quarantined platform events: list them, put one back in line, or drop it.",
    no_args_is_help=True,
)
app.add_typer(inbox_app, name="inbox")
T = TypeVar("T")


def _with_storage(config: Path, work: Callable[[Storage], Awaitable[T]]) -> T:
    settings = settings_from(config)

    async def go() -> T:
        storage = open_storage(settings.storage.url)
        await storage.open()
        try:
            return await work(storage)
        finally:
            await storage.close()

    return run_async(go())


def line(event: InboxEvent) -> str:
    return (
        f"{event.id}\t{event.platform}\t{event.event_id}\t{iso(event.received_at)}\t"
        f"attempts={event.attempts}\t{event.last_error or ''}"
    )


@inbox_app.command("list")
def list_cmd(
    config: ConfigOpt = Path("config.yaml"),
    show_payload: Annotated[
        int | None, typer.Option("--show-payload", help="print this event's raw payload")
    ] = None,
) -> None:
    """Quarantined events, oldest first: id, platform, event id, received, attempts, error."""
    events = _with_storage(config, lambda s: s.inbox_quarantined(limit=1000))
    if show_payload is not None:
        chosen = [e for e in events if e.id == show_payload]
        if not chosen:
            err.print(f"no quarantined event {show_payload}", markup=False)
            raise typer.Exit(1)
        out.print(chosen[0].payload, markup=False, highlight=False)
        return
    if not events:
        out.print("no quarantined events", markup=False)
        return
    for event in events:
        out.print(line(event), markup=False, highlight=False)


@inbox_app.command("retry")
def retry_cmd(event_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Put a quarantined event back in line, with fresh attempts."""
    if not _with_storage(config, lambda s: s.inbox_retry(event_id, utcnow())):
        err.print(f"no quarantined event {event_id}", markup=False)
        raise typer.Exit(1)
    out.print(f"event {event_id} is back in line", markup=False)


@inbox_app.command("drop")
def drop_cmd(event_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Delete a quarantined event for good."""
    if not _with_storage(config, lambda s: s.inbox_drop(event_id)):
        err.print(f"no quarantined event {event_id}", markup=False)
        raise typer.Exit(1)
    out.print(f"event {event_id} dropped", markup=False)
