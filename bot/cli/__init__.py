"""`surveybot`: the typer app with every command group registered (one module per group)."""

from bot.cli import core, db, inbox, ops, report, webhooks
from bot.cli.common import app

__all__ = ["app", "core", "db", "inbox", "ops", "report", "webhooks"]
