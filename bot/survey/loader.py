"""flows/*.yaml -> Flow, with every problem reported as ``path:line:col: [flow/question] msg``.

ruamel.yaml's round-trip loader keeps the line and column of every key and list item; the
validation problems of the flow model carry a path into the document, which is resolved here.
:class:`FlowRegistry` holds the flows in force and swaps a file's flow only when the new version
is valid (hot reload keeps serving the old one otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bot.survey.checks import Problem, validate
from bot.survey.flow import Flow
from bot.survey.texts import BUILTIN
from bot.survey.wording import yaml_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowError:
    path: str
    line: int  # 1-based
    col: int  # 1-based
    message: str
    flow_id: str | None = None
    question_id: str | None = None

    def __str__(self) -> str:
        where = "/".join(p for p in (self.flow_id, self.question_id) if p)
        tag = f"[{where}] " if where else ""
        return f"{self.path}:{self.line}:{self.col}: {tag}{self.message}"


def _position(doc: Any, loc: Sequence[str | int]) -> tuple[int, int]:
    """0-based (line, col) of the deepest node of ``loc`` present in the document."""
    line, col = 0, 0
    node = doc
    for part in loc:
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        if isinstance(node, Mapping):
            key = part if part in node else str(part) if str(part) in node else None
            if key is None:
                line, col = lc.line, lc.col
                break
            line, col = lc.key(key)
            node = node[key]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            line, col = lc.item(part)
            node = node[part]
        else:
            break
    return line, col


def load_flow(path: Path) -> tuple[Flow | None, list[FlowError]]:
    """Parse and validate one file; all its problems at once."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(shown, 1, 1, f"cannot read file: {exc}")]
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [FlowError(shown, line, col, yaml_message(str(exc.problem or exc)))]
    except YAMLError as exc:
        return None, [FlowError(shown, 1, 1, f"YAML: {exc}")]
    flow_id = doc.get("id") if isinstance(doc, Mapping) else None
    flow_id = flow_id if isinstance(flow_id, str) else None
    flow, problems = validate(doc)
    problems += _file_problems(doc, path)
    errors = []
    for problem in problems:
        line, col = _position(doc, problem.loc)
        errors.append(
            FlowError(shown, line + 1, col + 1, problem.message, flow_id, problem.question_id)
        )
    errors.sort(key=lambda e: (e.line, e.col))
    return (flow if not errors else None), errors


def _file_problems(doc: Any, path: Path) -> list[Problem]:
    """What only the file can tell (its name) and the interface strings; checked on the raw
    document, so they come with every other problem, even when the flow does not parse."""
    if not isinstance(doc, Mapping):
        return []
    out = []
    flow_id = doc.get("id")
    if isinstance(flow_id, str) and flow_id != path.stem:
        out.append(
            Problem(loc=("id",), message=f"id {flow_id!r} must equal the file name {path.stem!r}")
        )
    strings = doc.get("strings")
    for key in strings if isinstance(strings, Mapping) else ():
        if key not in BUILTIN:
            out.append(
                Problem(
                    loc=("strings", key),
                    message=f"unknown interface string {key!r}; known: {', '.join(BUILTIN)}",
                )
            )
    return out


def flow_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories to their *.yaml / *.yml files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    return files


class FlowRegistry:
    """The flows in force, by id. Broken edits are refused and the old version keeps serving."""

    def __init__(self, flows_dir: Path) -> None:
        self.flows_dir = flows_dir
        self._flows: dict[str, Flow] = {}
        self._by_file: dict[Path, str] = {}
        self._refused: dict[Path, list[FlowError]] = {}  # last errors logged, per file

    def load_all(self) -> list[FlowError]:
        if not self.flows_dir.is_dir():
            return [FlowError(str(self.flows_dir), 1, 1, "flows directory does not exist")]
        errors: list[FlowError] = []
        for path in flow_files([self.flows_dir]):
            errors.extend(self.reload(path))
        return errors

    def reload(self, path: Path) -> list[FlowError]:
        """(Re)load one file. A deleted file withdraws its flow."""
        path = path.resolve()
        if not path.exists():
            old = self._by_file.pop(path, None)
            if old is not None:
                self._flows.pop(old, None)
                log.info("flow %s withdrawn: %s was deleted", old, path)
            return []
        flow, errors = load_flow(path)
        if flow is None:
            if self._refused.get(path) != errors:  # an editor's save comes as several events
                for error in errors:
                    log.error("flow refused, previous version keeps serving: %s", error)
            self._refused[path] = errors
            return errors
        self._refused.pop(path, None)
        owner = next((p for p, fid in self._by_file.items() if fid == flow.id), None)
        if owner is not None and owner != path:
            error = FlowError(str(path), 1, 1, f"flow id {flow.id!r} is already defined in {owner}")
            log.error("%s", error)
            return [error]
        previous = self._flows.get(flow.id)
        self._flows[flow.id] = flow
        self._by_file[path] = flow.id
        if previous is None:
            log.info("flow %s loaded (version %s) from %s", flow.id, flow.version, path)
        elif previous.version != flow.version:
            log.info("flow %s reloaded (version %s -> %s) from %s", flow.id, previous.version,
                     flow.version, path)  # fmt: skip
        return []

    def get(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def ids(self) -> list[str]:
        return sorted(self._flows)

    def __len__(self) -> int:
        return len(self._flows)
