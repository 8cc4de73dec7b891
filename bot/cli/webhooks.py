"""`surveybot webhooks`: recent signed deliveries, the dead letters, and redelivery.

Deliveries are rows of the outbox's ``webhook`` lane (see :mod:`bot.conversation.webhooks`);
``redeliver`` puts a dead (or sent) one back in line with its original event id, and the
running ``surveybot run`` posts it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import ConfigOpt, app, err, out, run_async, settings_from
from storage import open_storage
from storage.base import OutboxMessage, OutboxStatus, Storage, iso, utcnow

hooks = typer.Typer(help="Outgoing webhooks: recent deliveries, failures, redeliver.")
app.add_typer(hooks, name="webhooks")


def describe(row: OutboxMessage) -> str:
    """One line per delivery: id, status, endpoint, event type and id, attempts, outcome."""
    data = json.loads(row.body)
    event = data.get("event", {})
    outcome = row.platform_message_id if row.status == "sent" else row.last_error
    return (
        f"#{row.id} {row.status:<7} {data.get('endpoint')} {event.get('type')} {event.get('id')}"
        f" created {iso(row.created_at)} attempts {row.attempts}"
        + (f" — {outcome}" if outcome else "")
    )


async def _listing(config: Path, status: OutboxStatus | None, limit: int) -> list[str]:
    storage = open_storage(settings_from(config).storage.url)
    await storage.open()
    try:
        rows = await storage.outbox_recent(limit, status=status, lane="webhook")
        return [describe(row) for row in rows]
    finally:
        await storage.close()


@hooks.command("list")
def list_cmd(
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Recent deliveries (pending, sent, dead), newest first."""
    lines = run_async(_listing(config, None, limit))
    for line in lines or ["no webhook deliveries yet"]:
        out.print(line, markup=False)


@hooks.command("failures")
def failures_cmd(
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Dead-lettered deliveries (retried for `webhooks.retry_for`, then given up)."""
    lines = run_async(_listing(config, "dead", limit))
    for line in lines or ["no failed webhook deliveries"]:
        out.print(line, markup=False)


async def _redeliver(storage: Storage, ids: list[int]) -> list[int]:
    return [i for i in ids if await storage.outbox_redeliver(i, utcnow(), lane="webhook")]


@hooks.command("redeliver")
def redeliver_cmd(
    ids: Annotated[list[int], typer.Argument(help="delivery ids from `webhooks failures`")],
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Put dead (or sent) deliveries back in line; `surveybot run` posts them again."""

    async def go() -> list[int]:
        storage = open_storage(settings_from(config).storage.url)
        await storage.open()
        try:
            return await _redeliver(storage, ids)
        finally:
            await storage.close()

    done = run_async(go())
    for i in ids:
        if i in done:
            out.print(f"#{i} queued for redelivery")
        else:
            err.print(f"#{i}: no dead or sent webhook delivery with that id")
    raise typer.Exit(0 if len(done) == len(ids) else 1)
