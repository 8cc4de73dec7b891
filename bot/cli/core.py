"""`surveybot` commands (typer). Each command is a thin shell over the library."""

from __future__ import annotations

import asyncio
import csv
import getpass
import json
import logging
import secrets
import shutil
import sys
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.app import services
from bot.chat import Address
from bot.cli.common import (
    EXPORT_COLUMNS,
    ConfigOpt,
    CtxOpt,
    app,
    err,
    out,
    parse_address,
    parse_ctx,
    parse_since,
    plural,
    run_async,
    settings_from,
    setup_logging,
    unknown_flow_message,
)
from bot.conversation.alerts import check_alerts
from bot.conversation.runtime import UnknownFlow
from bot.reports.cells import safe_row
from bot.settings import ConfigError, Settings
from bot.survey.flow import Flow
from bot.survey.loader import flow_files, load_flow


@app.command("validate")
def validate_cmd(
    paths: Annotated[list[Path] | None, typer.Argument(help="flow files or directories")] = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Check flow files; list every problem as path:line:col (exit 1), or summarise each flow."""
    settings = None if paths else settings_from(config)  # the configured flows and alerts
    targets = [settings.flows_dir] if settings is not None else list(paths or [])
    files = flow_files(targets)
    if not files:
        err.print(f"no flow files found in {', '.join(map(str, targets))}")
        raise typer.Exit(1)
    failed = False
    flows: dict[str, Flow] = {}
    for path in files:
        flow, errors = load_flow(path)
        for error in errors:
            out.print(str(error), markup=False)
        if flow is not None:
            flows[flow.id] = flow
            out.print(
                f"{path}: ok — {flow.id} ({flow.name}): {len(flow.questions)} questions, "
                f"locales {'/'.join(flow.locales)}, version {flow.version}",
                markup=False,
            )
        failed |= bool(errors)
    if settings is not None:  # the configured flows: the alert rules must fit them
        for problem in check_alerts(settings.alerts, flows, settings.platforms()):
            out.print(f"{config}: {problem}", markup=False)
            failed = True
    raise typer.Exit(1 if failed else 0)


@app.command("try")
def try_cmd(
    flow: Annotated[str, typer.Argument(help="flow id, e.g. nps")],
    locale: Annotated[str | None, typer.Option(help="en, el, lt, ...")] = None,
    ctx: CtxOpt = None,
    user: Annotated[
        str | None, typer.Option("--user", help="answer as this console user (default: you)")
    ] = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Answer a flow in the terminal (works with piped stdin); answers are stored. Each run is
    its own conversation, so previews running at the same time never mix."""
    settings = settings_from(config)
    setup_logging()
    who = user or getpass.getuser()
    finished = run_async(_try(settings, flow, locale, parse_ctx(ctx), who))
    if not finished:
        err.print("input ended before the survey was finished; the answers so far are saved")
        raise typer.Exit(1)


async def _try(
    settings: Settings, flow_id: str, locale: str | None, ctx: dict[str, str], user: str
) -> bool:
    from bot.platforms.console import ConsoleAdapter, read_line

    async with services(settings) as svc:
        adapter = ConsoleAdapter(out, locale)
        svc.runtime.adapters["console"] = adapter
        # a chat of its own: answers typed into another preview never land in this one
        address = Address(platform="console", user_id=user, chat_id=f"try-{secrets.token_hex(4)}")
        svc.runtime.sender = None  # one person at a terminal: show what is owed at once
        try:
            check_locale(svc.runtime.flow(flow_id), locale)
            session = await svc.runtime.start_survey(
                flow_id, address, ctx, triggered_by="try", locale=locale
            )
        except UnknownFlow as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(2) from None
        while True:
            current = await svc.storage.get_session(session.id)
            if current is None or current.status != "active":
                return current is not None and current.status == "completed"
            line = await asyncio.to_thread(read_line)
            if line is None:
                return False
            inbound = adapter.reply(line)
            if inbound is not None:
                await svc.runtime.handle(inbound)


def check_locale(flow: Flow, locale: str | None) -> None:
    """``--locale`` must name one of the flow's languages (el-GR counts as el)."""
    if locale is None:
        return
    primary = locale.replace("_", "-").split("-")[0].lower()
    if primary not in flow.locales:
        err.print(
            f"flow {flow.id!r} has no {locale!r} texts; its locales: {', '.join(flow.locales)}",
            markup=False,
        )
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv")] = "jsonl",
    flow: Annotated[str | None, typer.Option(help="only this flow")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date/time or a duration ago (7d)")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (default stdout)")
    ] = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """One row per answer: session, flow, question, metric, value, text, who, when (UTC)."""
    if format not in ("jsonl", "csv"):
        raise typer.BadParameter("expected jsonl or csv", param_hint="--format")
    settings = settings_from(config)
    stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        count, known = run_async(_export(settings, format, flow, parse_since(since), stream))
    finally:
        if output:
            stream.close()
    if flow is not None and count == 0 and flow not in known:
        err.print(unknown_flow_message(flow, known), markup=False)
        raise typer.Exit(1)
    err.print(f"{plural(count, 'answer')} exported")


async def _export(
    settings: Settings, fmt: str, flow: str | None, since: datetime | None, stream: Any
) -> tuple[int, list[str]]:
    """Rows written, and the flows loaded (to tell an unknown flow from an empty one)."""
    count = 0
    writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    async with services(settings) as svc:
        async for row in svc.storage.export_rows(flow, since):
            data = row.as_dict()
            if writer:
                context = json.dumps(data["context"], sort_keys=True)
                writer.writerow(safe_row({**data, "context": context}))
            else:
                stream.write(json.dumps(data, ensure_ascii=False) + "\n")
            count += 1
        return count, svc.registry.ids()


@app.command("erase")
def erase_cmd(
    user: Annotated[str, typer.Option("--user", help="PLATFORM:ID, e.g. telegram:123456")],
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Remove a customer's answers and sessions (right to erasure); says how many."""
    address = parse_address(user)
    settings = settings_from(config)

    async def erase() -> tuple[int, int]:
        async with services(settings) as svc:
            return await svc.storage.erase_user(address.platform, address.user_id)

    answers, sessions = run_async(erase())
    out.print(f"erased {plural(answers, 'answer')} and {plural(sessions, 'session')} of {user}")


@app.command("init")
def init_cmd(
    directory: Annotated[Path, typer.Argument(help="where to write config.yaml and flows/")],
) -> None:
    """Write a working config.yaml and the shipped flows (csat, nps, ces) into DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yaml"
    if config.exists():
        err.print(f"{config} already exists; not overwriting")
        raise typer.Exit(1)
    flows = directory / "flows"
    flows.mkdir(exist_ok=True)
    shipped = resources.files("bot.shipped_flows")
    for item in shipped.iterdir():
        if item.name.endswith(".yaml") and not (flows / item.name).exists():
            with resources.as_file(item) as source:
                shutil.copyfile(source, flows / item.name)
    config.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    out.print(
        f"wrote {config} and {flows}/ (csat, nps, ces). Next: cd {directory} && surveybot try nps"
    )


CONFIG_TEMPLATE = """\
# surveybot configuration. Secrets never go here: set SURVEYBOT_TELEGRAM_TOKEN,
# SURVEYBOT_SLACK_BOT_TOKEN, SURVEYBOT_SLACK_APP_TOKEN, SURVEYBOT_SLACK_SIGNING_SECRET,
# SURVEYBOT_API_TOKEN in the environment. Any key can be overridden as SURVEYBOT_SECTION__KEY.
flows_dir: flows
storage: {url: "sqlite:///data/surveys.db"}      # or postgresql://user@host/db
staff: {telegram: [], slack: []}                  # who may send surveys (user ids)
telegram:
  mode: polling
  api_base_url: "https://api.telegram.org/bot"
  webhook_url: null
  # What the bot sends, paced to Telegram's published limits (0 turns a limit off: a local Bot
  # API server, paid broadcasts). Customers' replies go first; bulk sends (scheduled surveys,
  # reminders, API requests) get what is left, and always at least `bulk_min_share`.
  rate_limit:
    {messages_per_second: 30, per_chat_per_second: 1, chat_burst: 4, group_per_minute: 20,
     bulk_min_share: 0.2}
slack:
  mode: socket
  api_base_url: "https://slack.com/api/"
  # chat.postMessage: about 1/s per channel; no published workspace-wide figure
  rate_limit:
    {messages_per_second: 20, per_channel_per_second: 1, channel_burst: 3, bulk_min_share: 0.2}
  # Support threads: staff add `reaction` to a customer's message (or use the "Send survey"
  # message shortcut) and `flow` is asked in its thread. `reaction: null` turns reactions off.
  threads: {flow: csat, reaction: white_check_mark, locale: null}
  # Per channel (by channel ID), over `threads`; `locale` is for people Slack does not say the
  # language of (Slack Connect users from other organisations):
  # channels:
  #   C0123ACME: {flow: csat, reaction: heavy_check_mark, locale: el}
  channels: {}
server: {host: 127.0.0.1, port: 8080}
surveys: {expires_after: 72h, remind_after: 24h, throttle: 30d}
# Detractor alerts (docs/alerts.md): a rule posts an alert with "I'll follow up" / "Resolved"
# buttons to a Slack channel (slack:<channel ID>) or a Telegram group (telegram:<chat ID>):
# alerts:
#   detractors: {when: nps <= 6, to: "slack:C0123ABCD", locale: en}
#   unhappy: {when: csat = no, to: "telegram:-1001234567890", topic: 42, locale: el}
alerts: {}
"""


@app.command("run")
def run_cmd(
    config: ConfigOpt = Path("config.yaml"),
    log_format: Annotated[str, typer.Option(help="text or json")] = "text",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
    log_file: Annotated[
        str | None,
        typer.Option(
            help="write logs here; '-' = stderr (default: stderr, or surveybot.log "
            "beside config.yaml in console mode, so logs stay out of the chat)"
        ),
    ] = None,
) -> None:
    """Start what config.yaml and the environment enable (console chat when no platform)."""
    if log_format not in ("text", "json"):
        raise typer.BadParameter("expected text or json", param_hint="--log-format")
    settings = settings_from(config)
    if not [p for p in flow_files([settings.flows_dir]) if p.is_file()]:
        where = "no config.yaml here and " if not config.exists() else ""
        err.print(
            f"{where}no flows in {settings.flows_dir}: nothing to serve. Run `surveybot init "
            "DIR` to write a config.yaml and the shipped flows, then start `surveybot run` "
            "there (or pass --config PATH).",
            markup=False,
        )
        raise typer.Exit(2)
    console_mode = settings.telegram_token is None and settings.slack_bot_token is None
    if log_file is None and console_mode:
        log_file = str((config.parent if config.exists() else Path.cwd()) / "surveybot.log")
        err.print(f"console mode: logs go to {log_file} (--log-file - shows them here)",
                  markup=False)  # fmt: skip
    target = None if log_file in (None, "-") else Path(log_file)
    setup_logging(log_level, log_format, target)  # type: ignore[arg-type]
    from bot.run import run

    try:
        run_async(run(settings))
    except KeyboardInterrupt:
        logging.getLogger(__name__).info("stopped")
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


def main() -> None:  # pragma: no cover
    app()
