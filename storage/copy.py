"""Moving an installation between backends (``surveybot db copy``), on the copy methods of
the Storage protocol: every table, parents before children, in batches.

Rows travel as ``column -> value`` dicts of plain values (str, int, float, None) and aware
datetimes; a time may also arrive as ISO text (SQLite keeps times as text) and JSON as text.
Each loader converts to its own column types, so any backend copies to any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from storage.base import Storage

BATCH = 1000


class CopyError(Exception):
    pass


def parents_first(tables: Iterable[str], references: Iterable[tuple[str, str]]) -> list[str]:
    """Tables ordered so that each comes after the tables it references (``(child, parent)``
    pairs); otherwise alphabetical, for a stable order."""
    remaining = sorted(set(tables))
    parents: dict[str, set[str]] = {t: set() for t in remaining}
    for child, parent in references:
        if child in parents and parent in parents and child != parent:
            parents[child].add(parent)
    ordered: list[str] = []
    while remaining:
        ready = [t for t in remaining if parents[t] <= set(ordered)]
        if not ready:  # a cycle: keep going in name order rather than loop forever
            ready = remaining[:1]
        ordered.extend(ready)
        remaining = [t for t in remaining if t not in ready]
    return ordered


async def row_counts(storage: Storage) -> dict[str, int]:
    return {table: await storage.count_rows(table) for table in await storage.copy_tables()}


async def copy_storage(
    source: Storage,
    target: Storage,
    *,
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
    batch: int = BATCH,
) -> dict[str, int]:
    """Copy every table of ``source`` (opened, so migrated) into ``target`` (opened); returns
    rows copied per table. A non-empty target is refused unless ``force``, which empties it
    first. Both must be at the same schema version."""
    source_version, target_version = await source.schema_version(), await target.schema_version()
    if source_version != target_version:
        raise CopyError(
            f"schema versions differ: source {source_version}, target {target_version}; "
            "run `surveybot db migrate` with the newer surveybot on both"
        )
    tables = await source.copy_tables()
    missing = sorted(set(tables) - set(await target.copy_tables()))
    if missing:
        raise CopyError(f"target has no table(s) {', '.join(missing)}")
    filled = {t: n for t, n in (await row_counts(target)).items() if n}
    if filled:
        if not force:
            listing = ", ".join(f"{t} ({n} rows)" for t, n in filled.items())
            raise CopyError(f"target is not empty: {listing}; use --force to replace its data")
        await target.clear_tables()
    copied: dict[str, int] = {}
    for table in tables:
        count = 0
        pending: list[dict[str, Any]] = []
        async for row in source.dump_rows(table):
            pending.append(row)
            if len(pending) >= batch:
                count += await target.load_rows(table, pending)
                pending = []
        if pending:
            count += await target.load_rows(table, pending)
        copied[table] = count
        if progress is not None:
            progress(table, count)
    return copied
