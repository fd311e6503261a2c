"""Read YAML into plain data while remembering the line of every field.

PyYAML's YAML 1.1 guesses are switched off where they would surprise a profile's author:
`13:00` stays a string (not 780 minutes), dates stay strings for pydantic to check (so
"2027-04-31" is reported as a field error, not a parser crash), and mapping keys are always
the text written (`on:` is the key "on", not True). Duplicate keys are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import ProfileError
from core.files import FileTooLarge, UnreadableFile, read_regular_file

MAX_BYTES = 2 * 1024 * 1024
# Aliases (`*agenda`) are expanded: a small file could otherwise expand to millions of values.
MAX_VALUES = 100_000
MAX_DEPTH = 40
_STRING_TAGS = {"tag:yaml.org,2002:timestamp"}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


@dataclass
class Located:
    """Data read from a YAML file, with the 1-based line of each path."""

    data: Any
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    values: int = 0  # how many values were built (aliases expanded)

    def line_of(self, path: tuple[object, ...]) -> int | None:
        """The line of the deepest part of `path` that the file has."""
        parts = tuple(str(p) for p in path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)


def read_yaml(path: Path) -> Located:
    """Parse `path`; raise ProfileError naming file and line for anything unreadable."""
    return parse_bytes(read_profile_bytes(path), path)


def read_profile_bytes(path: Path) -> bytes:
    """The bytes of a profile file: a regular file, read no further than the limit."""
    try:
        return read_regular_file(path, MAX_BYTES)
    except FileTooLarge:
        raise ProfileError(
            f"{path}: the file is larger than {MAX_BYTES} bytes; a profile may be at most "
            f"{MAX_BYTES}"
        ) from None
    except UnreadableFile as exc:
        raise ProfileError(f"{path}: the file {exc}") from None


def parse_bytes(raw: bytes, path: Path) -> Located:
    """Decode `raw` (read from `path`) as UTF-8 and parse it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProfileError(f"{path}:{line}: the file is not UTF-8 (byte {exc.start})") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, name: str) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ProfileError(f"{name}: the file is nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ProfileError(f"{name}{line}: YAML syntax: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{name}: YAML: {exc}") from None
    located = Located(data=None)
    if node is None:
        raise ProfileError(f"{name}: the file is empty")
    located.data = _build(node, (), located, name, yaml.SafeLoader(""))
    return located


def _build(
    node: yaml.Node, path: tuple[str, ...], located: Located, name: str, loader: yaml.SafeLoader
) -> Any:
    located.lines.setdefault(path, node.start_mark.line + 1)
    _check(node, path, located, name)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                raise ProfileError(f"{name}:{line}: a key must be plain text")
            key = str(key_node.value)
            if key in result:
                line = key_node.start_mark.line + 1
                where = _dotted((*path, key))
                raise ProfileError(f"{name}:{line}: {where}: duplicate key {key!r}")
            located.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*path, key), located, name, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, str(i)), located, name, loader)
            for i, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    if node.tag in _STRING_TAGS or (node.tag == "tag:yaml.org,2002:int" and ":" in node.value):
        return node.value
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise ProfileError(f"{name}:{node.start_mark.line + 1}: {exc.problem}") from None


def _check(node: yaml.Node, path: tuple[str, ...], located: Located, name: str) -> None:
    """Refuse what no profile needs: millions of values, deep nesting, tags on collections."""
    line = node.start_mark.line + 1
    located.values += 1
    if located.values > MAX_VALUES:
        raise ProfileError(
            f"{name}:{line}: the file expands to more than {MAX_VALUES} values "
            "(aliases such as *name repeat what they point at)"
        )
    if len(path) > MAX_DEPTH:
        raise ProfileError(f"{name}:{line}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _COLLECTION_TAGS:
        where = _dotted(path) or "(top level)"
        raise ProfileError(f"{name}:{line}: {where}: unknown tag {node.tag!r}")


def _dotted(path: tuple[str, ...]) -> str:
    """`routines[0].messages[1].to`, as the loader's other messages write a field's path."""
    text = ""
    for part in path:
        if part.isdigit():
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
