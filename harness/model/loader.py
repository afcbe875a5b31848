"""Load case files: parse, expand ``params``, validate, and report errors as file:line: field.

Expansion happens before validation so that ``${size}`` can stand where an integer is required; the
structure of a case does not change under substitution, so a pydantic error path still points at the
right line of the unexpanded file.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.model.checks import problems
from harness.model.schema import CaseFileModel, CaseModel
from harness.model.yaml_lines import YamlSyntaxError, line_of, load_with_lines

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CaseError(ValueError):
    """A problem in a case file, located precisely enough to fix it without searching."""

    def __init__(self, file: str, line: int, field_path: str, message: str) -> None:
        self.file, self.line, self.field, self.message = file, line, field_path, message
        where = f"{file}:{line}"
        super().__init__(f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Case:
    """One expanded, validated case, with where it came from."""

    family: str
    file: str
    line: int
    model: CaseModel
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def nodeid(self) -> str:
        """``family/file.yaml::case-id``: the pytest-style name used everywhere."""
        return f"{self.file}::{self.id}"


def _field_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _substitute(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return params.get(whole.group(1), value)
        return _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


def _expansions(params: Any) -> list[dict[str, Any]]:
    if params is None:
        return [{}]
    if isinstance(params, dict):
        names = list(params)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*params.values())]
    return [dict(row) for row in params]


def load_file(path: Path, root: Path) -> list[Case]:
    """All cases of one family file; raises CaseError on the first problem."""
    rel = path.relative_to(root).as_posix()
    text = path.read_text(encoding="utf-8")
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise CaseError(rel, exc.line, "", f"YAML syntax: {exc}") from exc
    try:
        file_model = CaseFileModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CaseError(rel, line_of(lines, tuple(err["loc"])), _field_path(err["loc"]), err["msg"]) from exc
    family = path.parent.relative_to(root).as_posix()
    defaults = file_model.defaults
    source_lines = text.splitlines()
    starts = sorted(lines.get(("cases", i), 1) for i in range(len(file_model.cases)))
    cases: list[Case] = []
    for index, raw in enumerate(file_model.cases):
        base: tuple[str | int, ...] = ("cases", index)
        line = line_of(lines, base)
        nxt = next((s for s in starts if s > line), len(source_lines) + 1)
        source = "\n".join(source_lines[line - 1 : nxt - 1]).rstrip()
        merged = dict(raw)
        merged["tags"] = list(dict.fromkeys([family, *defaults.tags, *raw.get("tags", [])]))
        if defaults.expect:
            merged["expect"] = {**defaults.expect, **(raw.get("expect") or {})}
        for key in ("spec", "role", "binding", "timeout"):
            default = getattr(defaults, key)
            if key not in merged and default is not None:
                merged[key] = default
        try:
            rows = _expansions(raw.get("params"))
        except (TypeError, ValueError) as exc:
            raise CaseError(rel, line_of(lines, (*base, "params")), "params", str(exc)) from exc
        for row in rows:
            expanded = _substitute({k: v for k, v in merged.items() if k != "params"}, row)
            try:
                model = CaseModel.model_validate(expanded)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = (*base, *err["loc"])
                raise CaseError(rel, line_of(lines, loc), _field_path(loc), err["msg"]) from exc
            for where, message in problems(model):
                loc = (*base, *where)
                raise CaseError(rel, line_of(lines, loc), _field_path(loc), message)
            unresolved = _PLACEHOLDER.search(model.id)
            if unresolved:
                raise CaseError(rel, line, f"cases[{index}].id", f"unknown parameter {unresolved.group(0)}")
            cases.append(Case(family, rel, line, model, row, source))
    return cases


def iter_case_files(root: Path) -> Iterator[Path]:
    """Conformance case files; ``interop/`` holds interop scenarios (``harness.model.interop``), not cases."""
    for p in sorted(root.rglob("*.yaml")):
        if p.is_file() and "data" not in p.parts and p.parent.name != "interop":
            yield p


def load_all(root: Path) -> tuple[list[Case], list[CaseError]]:
    """Every case under ``root``; problems are collected, not raised, so one bad file hides nothing."""
    cases: list[Case] = []
    errors: list[CaseError] = []
    seen: dict[str, Case] = {}
    for path in iter_case_files(root):
        try:
            loaded = load_file(path, root)
        except CaseError as exc:
            errors.append(exc)
            continue
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            errors.append(CaseError(path.relative_to(root).as_posix(), 1, "", str(exc)))
            continue
        for case in loaded:
            prior = seen.get(case.id)
            if prior is not None:
                errors.append(
                    CaseError(
                        case.file,
                        case.line,
                        "id",
                        f"duplicate case id {case.id!r} (first at {prior.file}:{prior.line})",
                    )
                )
                continue
            seen[case.id] = case
            cases.append(case)
    return cases, errors
