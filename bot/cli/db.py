"""`surveybot db migrate` and `surveybot db copy`: schema upkeep and moving an installation
(SQLite -> PostgreSQL when one machine is not enough, or back). Registered on bot.cli.core.app."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import typer

from bot.cli.common import ConfigOpt, app, err, out, plural, run_async, settings_from
from storage import open_storage
from storage.copy import CopyError, copy_storage, row_counts

db_app = typer.Typer(
    name="db",
    help="Database upkeep: apply migrations, copy every table from one backend to another.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="storage URL (default: storage.url from config.yaml)"),
]
# What a wrong URL, a missing server or a broken database raises; reported without a traceback.
STORAGE_ERRORS = (OSError, ValueError, sqlite3.Error, asyncpg.PostgresError, TimeoutError)


def redact(url: str) -> str:
    """The URL with its password hidden, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_version(url: str) -> int:
    """The schema version of a SQLite file (0: new or empty)."""
    path = url.removeprefix("sqlite:///")
    if path == ":memory:" or not Path(path).exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


async def version_before(url: str) -> int:
    """The schema version a database holds before `db migrate` touches it (0: new or empty)."""
    if url.startswith("sqlite:"):
        return await asyncio.to_thread(sqlite_version, url)
    from storage.postgres.sql import split_url

    dsn, schema = split_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        table = f"{schema}.schema_migrations" if schema else "schema_migrations"
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
        if not exists:
            return 0
        return int(await conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {table}"))
    finally:
        await conn.close()


@db_app.command("migrate")
def migrate_cmd(url: UrlOpt = None, config: ConfigOpt = Path("config.yaml")) -> None:
    """Apply pending schema migrations (safe to run while workers start: they wait their turn);
    says how many it applied."""
    target = url or settings_from(config).storage.url

    async def migrate() -> tuple[int, int]:
        before = await version_before(target)
        storage = open_storage(target)
        await storage.open()  # opening applies pending migrations
        try:
            return before, await storage.schema_version()
        finally:
            await storage.close()

    try:
        before, version = run_async(migrate())
    except STORAGE_ERRORS as exc:
        err.print(f"cannot migrate {redact(target)}: {exc}", markup=False)
        raise typer.Exit(2) from None
    if version == before:
        done = "already up to date, nothing applied"
    else:
        done = f"applied {plural(version - before, 'migration')} (from version {before})"
    out.print(f"{redact(target)}: schema at version {version}; {done}", markup=False)


@db_app.command("copy")
def copy_cmd(
    source: Annotated[str, typer.Option("--from", help="URL to copy from (sqlite:///...)")],
    target: Annotated[str, typer.Option("--to", help="URL to copy into (postgresql://...)")],
    force: Annotated[
        bool, typer.Option("--force", help="replace the data of a non-empty target")
    ] = False,
) -> None:
    """Copy every table (migrating both first); prints the rows copied per table. Refuses a
    target that holds data unless --force, which empties it first."""
    if source == target:
        err.print("--from and --to are the same database")
        raise typer.Exit(2)

    async def copy() -> tuple[dict[str, int], dict[str, int]]:
        src, dst = open_storage(source), open_storage(target)
        await src.open()
        try:
            await dst.open()
            try:
                copied = await copy_storage(
                    src,
                    dst,
                    force=force,
                    progress=lambda t, n: out.print(f"  {t}: {plural(n, 'row')}"),
                )
                return copied, await row_counts(dst)
            finally:
                await dst.close()
        finally:
            await src.close()

    out.print(f"copying {redact(source)} -> {redact(target)}", markup=False)
    try:
        copied, counts = run_async(copy())
    except CopyError as exc:
        err.print(f"refused: {exc}", markup=False)
        raise typer.Exit(1) from None
    except STORAGE_ERRORS as exc:
        err.print(f"copy failed: {exc}", markup=False)
        raise typer.Exit(2) from None
    mismatched = {t: (n, counts.get(t)) for t, n in copied.items() if counts.get(t) != n}
    if mismatched:
        err.print(f"row counts differ after the copy (copied, found): {mismatched}")
        raise typer.Exit(1)
    rows, tables = plural(sum(copied.values()), "row"), plural(len(copied), "table")
    out.print(f"copied {rows} in {tables}; counts verified")
