"""Safe YAML loading that remembers the line of every value.

A malformed case must be reported as ``file:line: field: problem``; pydantic gives us the field path,
this loader gives us the line for any path. Anchors and aliases work as in ``yaml.safe_load``.
"""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[str | int, ...]
# libyaml's parser when PyYAML has it (10x faster: the suite's 1000+ cases load at every start)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def load_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse ``text`` safely; return the data and a map from value path to 1-based line."""
    loader = _LOADER(text)  # one parse: the nodes give the lines, the same nodes give the data
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"{exc.problem or exc.context}") from exc
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    _index(node, (), lines)
    return data, lines


def _index(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines.setdefault((*path, key), key_node.start_mark.line + 1)
            _index(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), lines)


def line_of(lines: dict[Path, int], path: Path) -> int:
    """Line of the deepest known prefix of ``path``."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return 1
