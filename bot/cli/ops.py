"""`surveybot send` and `surveybot invite`: the dispatcher from the command line.

Both go through :class:`Dispatcher` like the HTTP API (throttling, idempotency, jobs in
storage). ``send`` now needs the platform's adapter, built here without connecting (no
polling, no socket), and runs a sender while it waits for the first question it owes to go
out; ``send --in/--at`` only stores the job, which the running ``surveybot run`` (sharing the
database) picks up at its time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.app import services
from bot.chat import Address
from bot.cli.common import (
    ConfigOpt,
    CtxOpt,
    app,
    err,
    out,
    parse_address,
    parse_ctx,
    run_async,
    settings_from,
    setup_logging,
)
from bot.conversation.admission import IdempotencyConflict, InvalidContext, TriggerResult
from bot.conversation.runtime import UnknownFlow
from bot.settings import Settings
from bot.survey.flow import parse_duration


def parse_when(delay: str | None, at: str | None, now: datetime) -> datetime | None:
    """``--in 1h`` or ``--at 2026-05-01T09:00`` (UTC unless it names a zone) -> a moment."""
    if delay is not None and at is not None:
        raise typer.BadParameter("give --in or --at, not both", param_hint="--in/--at")
    if delay is not None:
        try:
            return now + parse_duration(delay)
        except ValueError:
            raise typer.BadParameter(
                f"expected a duration like 30m, 1h, 2d: {delay!r}", param_hint="--in"
            ) from None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise typer.BadParameter(
                f"expected an ISO date/time like 2026-05-01T09:00Z: {at!r}", param_hint="--at"
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


@app.command("send")
def send_cmd(
    flow: Annotated[str, typer.Argument(help="flow id, e.g. csat")],
    to: Annotated[str, typer.Option("--to", help="telegram:USER_ID or slack:USER_ID")],
    ctx: CtxOpt = None,
    delay: Annotated[str | None, typer.Option("--in", help="send after 30m, 1h, 2d, ...")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="send at an ISO time (UTC default)")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="idempotency key")] = None,
    locale: Annotated[str | None, typer.Option(help="en, el, lt, ...")] = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Send a survey now, or schedule it for the running `surveybot run` to send."""
    address = parse_address(to)
    context = parse_ctx(ctx)
    send_at = parse_when(delay, at, datetime.now(UTC))
    settings = settings_from(config)
    setup_logging()
    result = run_async(_send(settings, flow, address, context, send_at, key, locale))
    where = f"{address.platform}:{address.user_id}"
    if result.status == "sent":
        out.print(f"sent {flow} to {where} (survey {result.session_id})", markup=False)
    elif result.status == "scheduled":
        session = f"survey {result.session_id}"
        out.print(f"scheduled {flow} for {where} ({session}); {_when(send_at, result)}",
                  markup=False)  # fmt: skip
    else:
        err.print(f"{result.status}: {result.reason or 'no reason given'}", markup=False)
        raise typer.Exit(1)


def _when(send_at: datetime | None, result: TriggerResult) -> str:
    if result.reason:
        return result.reason
    moment = send_at.isoformat() if send_at else "its time"
    return f"`surveybot run` sends it at {moment}"


async def _send(
    settings: Settings,
    flow: str,
    address: Address,
    context: dict[str, str],
    send_at: datetime | None,
    key: str | None,
    locale: str | None,
) -> TriggerResult:
    from bot.run import platform_runners

    async with services(settings) as svc:
        platform_runners(svc)  # adapters only: nothing starts polling
        now = send_at is None or send_at <= svc.dispatcher.clock()
        try:
            svc.runtime.flow(flow)
            refusal = unreachable(address.platform, set(svc.runtime.adapters), now=now)
            if refusal:
                err.print(refusal, markup=False)
                raise typer.Exit(2)
            if svc.sender is not None:  # this process delivers the question it owes
                svc.sender.start()
            return await svc.dispatcher.request(
                flow, address, context, triggered_by="cli", locale=locale, send_at=send_at,
                idempotency_key=key,
            )  # fmt: skip
        except UnknownFlow as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(2) from None
        except IdempotencyConflict as exc:
            err.print(f"refused: {exc}", markup=False)
            raise typer.Exit(1) from None
        finally:
            if svc.sender is not None:
                await svc.sender.stop()


TOKENS = {"telegram": "SURVEYBOT_TELEGRAM_TOKEN", "slack": "SURVEYBOT_SLACK_BOT_TOKEN"}


def unreachable(platform: str, configured: set[str], *, now: bool) -> str | None:
    """Why a survey for ``platform`` could never be delivered from this install (now or at
    its time, refused alike), or None. The console has no token: it is the terminal of a
    running `surveybot run`, so only a scheduled send can reach it."""
    if platform == "console":
        if now:
            return (
                "the console is a terminal, not a platform to send to: answer a flow yourself "
                "with `surveybot try FLOW`, or schedule it (--in 1m) for the console chat of a "
                "running `surveybot run`"
            )
        return None
    if platform not in configured:
        return f"{platform} is not configured: set {TOKENS[platform]} in the environment"
    return None


@app.command("invite")
def invite_cmd(
    flow: Annotated[str, typer.Argument(help="flow id, e.g. nps")],
    ctx: CtxOpt = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Print a one-use invite token and its Telegram link (https://t.me/<bot>?start=<token>)."""
    settings = settings_from(config)
    setup_logging()
    token, username = run_async(_invite(settings, flow, parse_ctx(ctx)))
    out.print(token, markup=False)
    if username:
        out.print(f"https://t.me/{username}?start={token}", markup=False)
    elif settings.telegram_token is None:
        err.print("no Telegram bot configured: give the token to the customer's /start")


async def _invite(settings: Settings, flow: str, context: dict[str, str]) -> tuple[str, str | None]:
    async with services(settings) as svc:
        try:
            token = await svc.dispatcher.invite(flow, context)
        except (UnknownFlow, InvalidContext) as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(2) from None
    username = settings.telegram.bot_username
    if username is None and settings.telegram_token is not None:
        try:
            from bot.platforms.telegram.runner import fetch_bot_username

            username = await fetch_bot_username(settings)
        except Exception as exc:
            err.print(
                f"could not ask Telegram for the bot's username ({exc}); set "
                "telegram.bot_username in config.yaml to print the link",
                markup=False,
            )
    return token, username.lstrip("@") if username else None
