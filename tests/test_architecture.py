"""The layout is the architecture: these checks fail when a change breaks it.

- no import cycle among the modules of ``bot/`` and ``storage/`` (every import counts, also the
  ones inside functions: a lazy import hides a cycle, it does not remove it);
- a platform SDK is imported only in its own platform folder; fastapi/starlette only in the HTTP
  app (``bot/web/``) and by the platform runners that mount a route;
- the layers point down: ``bot/chat.py`` (platform-neutral data types) is the floor; the pure
  survey code imports only itself and chat; storage imports only the pure model and the chat
  types; conversation never imports a platform, the web app or the CLI;
- no production module is longer than 400 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "storage")
MAX_LINES = 400

# third-party root package -> the module prefixes allowed to import it
SDK_HOMES: dict[str, tuple[str, ...]] = {
    "telegram": ("bot.platforms.telegram",),
    "slack_bolt": ("bot.platforms.slack",),
    "slack_sdk": ("bot.platforms.slack",),
    "fastapi": ("bot.web", "bot.platforms.base", "bot.platforms.telegram", "bot.platforms.slack"),
    "starlette": ("bot.web", "bot.platforms.telegram", "bot.platforms.slack"),
}
# first-party module prefix -> the first-party prefixes it may import
LAYERS: dict[str, tuple[str, ...]] = {
    "bot.survey": ("bot.survey", "bot.chat"),
    "bot.chat": ("bot.chat",),
    "storage": ("storage", "bot.survey", "bot.chat"),
    "bot.reports": ("bot.reports", "bot.survey", "bot.chat", "storage"),
    "bot.conversation": ("bot.conversation", "bot.survey", "bot.chat", "bot.metrics", "storage"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every module ``name`` imports (absolute names), resolved to known modules when first
    party: ``from bot.survey import flow`` is an import of ``bot.survey.flow``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in known else base


def first_party_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for imported in imports_of(name, path, known):
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_checker_finds_a_cycle_and_a_clean_graph_has_none() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    found = [f"cycle {' <-> '.join(c)}" for c in cycles(first_party_graph())]
    assert found == []


def test_platform_sdks_and_the_web_framework_stay_in_their_folders() -> None:
    known = modules()
    wrong = [
        f"{name} imports {imported}"
        for name, path in known.items()
        for imported in imports_of(name, path, known)
        for sdk, homes in SDK_HOMES.items()
        if imported.split(".")[0] == sdk and not within(name, homes)
    ]
    assert wrong == []


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_import_only_what_is_below_them(layer: str) -> None:
    allowed = LAYERS[layer]
    wrong = [
        f"{name} imports {target}"
        for name, targets in first_party_graph().items()
        if within(name, (layer,))
        for target in targets
        if not within(target, allowed)
    ]
    assert wrong == []


def test_no_production_module_is_longer_than_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
