"""Storage backends behind one protocol (storage.base.Storage)."""

from __future__ import annotations

from storage.base import Storage


def open_storage(url: str) -> Storage:
    """A backend for ``url`` (not yet opened): ``sqlite:///...`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        from storage.sqlite.backend import SQLiteStorage

        return SQLiteStorage(url)
    if url.startswith(("postgresql://", "postgres://")):
        from storage.postgres.backend import PostgresStorage

        return PostgresStorage(url)
    raise ValueError(f"unsupported storage url {url!r}: use sqlite:///path or postgresql://...")
