"""What every `surveybot` command shares: the typer app, consoles, option types and parsers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console

from bot.chat import PLATFORMS, Address
from bot.conversation.triggers import BadArguments, parse_arguments
from bot.settings import ConfigError, Settings, load_settings
from bot.survey.flow import parse_duration
from storage.base import ExportRow

app = typer.Typer(
    name="surveybot",
    help="CSAT, NPS and CES surveys inside Telegram and Slack, from YAML flows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Piped output (files, CI logs) is not cut to 80 columns: tables stay one row per line.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)
T = TypeVar("T")

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="config.yaml to read", envvar="SURVEYBOT_CONFIG")
]
CtxOpt = Annotated[
    list[str] | None, typer.Option("--ctx", help="survey context as key=value (repeatable)")
]
EXPORT_COLUMNS = list(ExportRow.model_fields)


def settings_from(config: Path) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


def parse_ctx(pairs: list[str] | None) -> dict[str, str]:
    """``--ctx key=value`` items, read by the same rule as /survey's context."""
    try:
        args = parse_arguments(pairs or [])
    except BadArguments as exc:
        raise typer.BadParameter(
            f"expected key=value, got {exc.item!r}", param_hint="--ctx"
        ) from None
    if args.words:
        raise typer.BadParameter(f"expected key=value, got {args.words[0]!r}", param_hint="--ctx")
    return dict(args.context)


def parse_address(text: str) -> Address:
    platform, sep, user = text.partition(":")
    if not sep or platform not in PLATFORMS or not user:
        raise typer.BadParameter(
            f"expected PLATFORM:ID with PLATFORM one of {', '.join(PLATFORMS)}, got {text!r}"
        )
    return Address(platform=platform, user_id=user)


def parse_since(text: str | None) -> datetime | None:
    """An ISO date/time (UTC unless it says otherwise) or a duration ago such as 7d."""
    if text is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO date/time or a duration like 7d: {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plural(count: int, word: str) -> str:
    """``1 row``, ``2 rows``, ``0 answers``: English count words for CLI messages."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def unknown_flow_message(flow: str, known: list[str]) -> str:
    return (
        f"unknown flow {flow!r}: it is not loaded and nothing is stored for it; "
        f"flows: {', '.join(known) or '(none loaded)'}"
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def setup_logging(
    level: str = "WARNING", fmt: Literal["text", "json"] = "text", file: Path | None = None
) -> None:
    from bot.logs import configure

    configure(level, fmt, file)
