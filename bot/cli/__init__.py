"""`surveybot`: the typer app with every command group registered (one module per group)."""

from bot.cli import core, db, ops, report
from bot.cli.common import app

__all__ = ["app", "core", "db", "ops", "report"]
