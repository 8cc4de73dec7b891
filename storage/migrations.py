"""Schema migrations, numbered: migration N brings a database to ``user_version`` N (SQLite)
or to row N of ``schema_migrations`` (PostgreSQL).

They are rendered from the one schema definition (:mod:`storage.schema`), where every table,
column and index names the migration that added it, so both dialects always have the same
tables, columns and constraints. Migration 1 renders exactly the DDL that release wrote by
hand (tests/storage/golden/schema-v1.*.sql keeps that text; a test migrates a database created
from it and compares it with a new one).
"""

from __future__ import annotations

from storage import dialect
from storage.schema import migrations

SQLITE: list[list[str]] = migrations(dialect.SQLITE)
POSTGRES: list[list[str]] = migrations(dialect.POSTGRES)
