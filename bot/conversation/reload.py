"""Hot reload: watch ``flows_dir`` and hand every changed flow file to the registry.

A valid edit replaces its flow for new sessions; a broken one is refused (logged as
``path:line:col: message`` by :meth:`FlowRegistry.reload`) and the previous version
keeps serving; a deleted file withdraws its flow. Sessions under way are untouched either way:
they run on the flow version stored when they started (``Runtime.flow_for``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from watchfiles import Change, awatch

from bot.survey.loader import FlowError, FlowRegistry

log = logging.getLogger(__name__)
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "1 change detected" per save
Reloaded = Callable[[Path, list[FlowError]], None]


def is_flow_file(change: Change, path: str) -> bool:
    """YAML files, not editors' hidden swap and backup files."""
    name = Path(path).name
    return name.endswith((".yaml", ".yml")) and not name.startswith((".", "#"))


def apply_changes(
    registry: FlowRegistry, changes: Iterable[tuple[Change, str]]
) -> dict[Path, list[FlowError]]:
    """Reload each changed file once (an editor's save often comes as several events); the
    registry logs what changed, once: a new version, a withdrawal, or the errors of a refused
    edit (not again while the file stays the same)."""
    results: dict[Path, list[FlowError]] = {}
    for path in sorted({Path(p) for change, p in changes if is_flow_file(change, p)}):
        results[path] = registry.reload(path)
    return results


async def watch_flows(
    registry: FlowRegistry,
    stop: asyncio.Event,
    *,
    on_reload: Reloaded | None = None,
    debounce_ms: int = 200,
    force_polling: bool | None = None,
) -> None:
    """Watch until ``stop`` is set. ``on_reload(path, errors)`` after each reloaded file."""
    if not registry.flows_dir.is_dir():
        log.warning("not watching %s: no such directory", registry.flows_dir)
        return
    log.info("watching %s for flow changes", registry.flows_dir)
    async for changes in awatch(
        registry.flows_dir,
        stop_event=stop,
        watch_filter=is_flow_file,
        debounce=debounce_ms,
        recursive=False,
        force_polling=force_polling,
        poll_delay_ms=100,
    ):
        for path, errors in apply_changes(registry, changes).items():
            if on_reload is not None:
                on_reload(path, errors)
