"""`surveybot report`: scores with n and 95% intervals, segments, response and drop-off, as
tables in a terminal or JSON/CSV for programs; ``--html FILE`` also writes the dashboard as a
static page that opens offline. Registered on :data:`bot.cli.core.app` by the import at the end of
bot/cli.py.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal, get_args

import typer

from bot.app import services
from bot.cli.common import (
    ConfigOpt,
    app,
    err,
    out,
    parse_since,
    run_async,
    settings_from,
    unknown_flow_message,
)
from bot.reports.build import Report, build_report
from bot.reports.format import render_table, to_csv, to_json
from bot.reports.model import DEFAULT_PERIOD, period_start
from bot.settings import Settings
from storage.base import utcnow
from storage.reporting import ReportQuery, SegmentBy

Format = Literal["table", "json", "csv"]


def parse_until(text: str | None) -> datetime | None:
    """Like ``--since``, except that a bare date includes that whole day."""
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return parse_since(text)
    if len(text) != 10:  # e.g. 20240301, which fromisoformat also reads as a date
        return parse_since(text)
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


@app.command("report")
def report_cmd(
    flow: Annotated[str | None, typer.Option(help="only this flow")] = None,
    period: Annotated[
        str,
        typer.Option(help="7d, 30d, 90d, 365d (any duration) or all; --since wins over it"),
    ] = DEFAULT_PERIOD,
    since: Annotated[
        str | None, typer.Option(help="from this ISO date/time (UTC), or a duration ago: 30d")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="up to this ISO date/time (a bare date counts whole)")
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="segment by platform, agent, locale, channel or week")
    ] = None,
    platform: Annotated[str | None, typer.Option(help="only telegram, slack or console")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or csv")] = "table",
    comments: Annotated[
        bool, typer.Option("--comments", help="include the latest free-text answers")
    ] = False,
    themes: Annotated[
        bool, typer.Option("--themes", help="what unhappy vs happy customers' comments say")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="also write the dashboard to this HTML file")
    ] = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """CSAT, NPS and CES with n and 95% intervals, what changed (with --since: against the
    previous period; with --by: each segment against everyone else); response rate; drop-off
    per question; with --themes, the comment themes per flow."""
    if format not in get_args(Format):
        raise typer.BadParameter("expected table, json or csv", param_hint="--format")
    if by is not None and by not in get_args(SegmentBy):
        raise typer.BadParameter(
            "expected platform, agent, locale, channel or week", param_hint="--by"
        )
    now = utcnow()
    start, end = parse_since(since), parse_until(until)
    if start is None:
        try:
            start = period_start(period, now)
        except (ValueError, OverflowError) as exc:
            raise typer.BadParameter(f"{exc}; or use all", param_hint="--period") from None
    if start and end and start >= end:
        raise typer.BadParameter("--since must be earlier than --until", param_hint="--since")
    query = ReportQuery(
        flow_id=flow,
        since=start,
        until=end,
        platform=platform,
        by=by,  # checked above
        themes=themes,
        now=now,
    )
    report, known = run_async(_report(settings_from(config), query))
    if flow is not None and flow not in known and not (report.scores or report.response):
        err.print(unknown_flow_message(flow, known), markup=False)
        raise typer.Exit(1)
    if html is not None:
        from bot.reports.page import render_html

        html.write_text(render_html(report), encoding="utf-8")
        err.print(f"wrote {html}", markup=False)
    shown = report if comments else report.model_copy(update={"comments": []})
    if format == "json":
        sys.stdout.write(to_json(shown) + "\n")
    elif format == "csv":
        sys.stdout.write(to_csv(shown, comments=comments))
    else:
        render_table(shown, out, comments=comments)


async def _report(settings: Settings, query: ReportQuery) -> tuple[Report, list[str]]:
    async with services(settings) as svc:
        report = await build_report(svc.storage, query, svc.registry, now=query.now,
                                    alerts=bool(svc.settings.alerts))  # fmt: skip
        return report, svc.registry.ids()
