"""Parser and validator wording translated into the words of the admin who wrote the YAML.

ruamel.yaml and pydantic speak about their own machinery ("mapping values are not allowed
here", "String should match pattern '^[a-z]...'"); an admin needs to know what to change.
Pure functions; :mod:`bot.survey.checks` and :mod:`bot.survey.loader` call them.
"""

from __future__ import annotations

from typing import Any

# ruamel.yaml problem -> what it usually means in a hand-written flow
YAML_HINTS: tuple[tuple[str, str], ...] = (
    ("mapping values are not allowed here",
     "a ':' where YAML did not expect one: is a space missing after an earlier ':', is this "
     "line indented wrongly, or does a text containing ': ' need quotes?"),
    ("could not find expected ':'",
     "a key without ':', or a line indented wrongly"),
    ("found character '\\t' that cannot start any token",
     "a tab: indent with spaces only"),
    ("found duplicate key", "the same key twice in one mapping"),
    ("expected <block end>, but found",
     "the indentation changes here: keys of one mapping must line up"),
    ("did not find expected key", "the indentation changes here, or a list item lacks '- '"),
    ("found unexpected end of stream", "a quote or bracket opened and never closed"),
)  # fmt: skip
IDENTIFIER = "start with a lowercase letter and use only a-z, 0-9 and _ (at most 32 characters)"


def yaml_message(problem: str) -> str:
    """``YAML syntax: <parser words> (<hint>)``."""
    for words, hint in YAML_HINTS:
        if words in problem:
            return f"YAML syntax: {problem} — {hint}"
    return f"YAML syntax: {problem}"


def pydantic_message(err: Any, field: str) -> str:
    """One pydantic error as a sentence about ``field`` of the flow."""
    kind, msg, ctx = str(err["type"]), str(err["msg"]), err.get("ctx") or {}
    given = err.get("input")
    if kind == "string_pattern_mismatch":
        if field.startswith("locales"):
            return f"{given!r} is not a locale: use 2 or 3 lowercase letters (en, el, lt)"
        return f"{given!r} is not a usable id: {IDENTIFIER}"
    if kind in ("too_short", "too_long"):
        count = len(given) if hasattr(given, "__len__") else "?"
        if kind == "too_short":
            return f"needs at least {ctx.get('min_length')} entries, has {count}"
        return f"may have at most {ctx.get('max_length')} entries, has {count}"
    if kind == "missing":
        return "is required but missing"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{given!r} is out of range ({msg.lower()})"
    if kind in ("int_parsing", "int_type"):
        return f"expected a whole number, got {given!r}"
    if kind in ("string_type", "dict_type") and field.split(".")[-1] in ("text", "name", "thanks"):
        return "expected text, or a map of locale to text (en: ..., el: ...)"
    return msg
