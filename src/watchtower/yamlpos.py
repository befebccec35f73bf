"""YAML loading that remembers where every key and list item came from.

:func:`load_yaml` parses text with ruamel.yaml's round-trip loader (the only one that
keeps node positions), returns plain Python data (dict, list, str, int, float, bool,
None, datetime) and a :class:`YamlDocument` whose :meth:`~YamlDocument.line_of` maps a
key path such as ``("sources", 2, "every")`` to the 1-based line of that key (or list
item), falling back to the nearest enclosing key that exists. Syntax errors, duplicate
keys, alias cycles and alias bombs raise :class:`YamlSyntaxError` with a line number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from watchtower.yamlfast import Unsupported, load_fast

Loc = tuple[str | int, ...]

#: Most nodes a config may expand to once aliases are followed (stops "billion laughs").
MAX_NODES = 100_000
#: Documents from this many characters on take the libyaml path: a few keys and values,
#: where the round-trip loader's first document already costs more than importing libyaml.
FAST_FROM = 1_000


class YamlSyntaxError(Exception):
    """The text is not YAML we accept; ``line`` is 1-based, ``message`` is for a user."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class YamlDocument:
    """Plain data plus the source line of every key path in it."""

    data: Any
    lines: Mapping[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: tuple[object, ...]) -> int:
        """1-based line of ``loc``, or of its longest prefix that exists; 1 for the root."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])  # type: ignore[arg-type]
            if line is not None:
                return line
        return 1


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raise :class:`YamlSyntaxError` for anything unusable.

    A plain document of at least :data:`FAST_FROM` characters is read by libyaml
    (:mod:`watchtower.yamlfast`, four to ten times faster); a shorter one (a line or
    two, where importing libyaml would cost more than it saves), any other, and every
    error, by the round-trip loader below.
    """
    if len(text) < FAST_FROM:
        return load_yaml_roundtrip(text)
    try:
        data, lines = load_fast(text, MAX_NODES)
    except Unsupported:
        return load_yaml_roundtrip(text)
    return YamlDocument(data=data, lines=lines)


def load_yaml_roundtrip(text: str) -> YamlDocument:
    """:func:`load_yaml` with ruamel.yaml's round-trip loader only (the reference)."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        raise YamlSyntaxError(_mark_line(exc), _describe(exc)) from exc
    except YAMLError as exc:
        raise YamlSyntaxError(1, _first_line(str(exc))) from exc
    builder = _Builder()
    data = builder.plain(tree, (), 1)
    return YamlDocument(data=data, lines=builder.lines)


def _mark_line(exc: MarkedYAMLError) -> int:
    mark = exc.problem_mark or exc.context_mark
    return int(mark.line) + 1 if mark is not None else 1


def _describe(exc: MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    text = "; ".join(_first_line(str(p)) for p in parts) or "invalid YAML"
    text = re.sub(r"\('(<[^>]*>)',\)", r"\1", text)
    if "found duplicate key" in text:
        key = text.split("found duplicate key", 1)[1].split(" with value")[0].strip()
        return f"duplicate key {key}"
    return text


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid YAML"


class _Builder:
    """Turns ruamel's round-trip tree into plain data, recording key lines on the way."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self.count = 0
        self.active: set[int] = set()

    def plain(self, node: Any, loc: Loc, line: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlSyntaxError(line, f"document expands to more than {MAX_NODES} nodes")
        if isinstance(node, CommentedMap | CommentedSeq):
            if id(node) in self.active:
                raise YamlSyntaxError(line, "an alias refers to itself (recursive structure)")
            self.active.add(id(node))
            try:
                if isinstance(node, CommentedMap):
                    return self._mapping(node, loc)
                return self._sequence(node, loc)
            finally:
                self.active.discard(id(node))
        return _scalar(node)

    def _mapping(self, node: CommentedMap, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key, value in node.items():
            plain_key = _key(key)
            line = _position(node, key, is_item=False)
            self.lines.setdefault(loc + (plain_key,), line)
            result[plain_key] = self.plain(value, loc + (plain_key,), line)
        return result

    def _sequence(self, node: CommentedSeq, loc: Loc) -> list[Any]:
        result = []
        for index, value in enumerate(node):
            line = _position(node, index, is_item=True)
            self.lines.setdefault(loc + (index,), line)
            result.append(self.plain(value, loc + (index,), line))
        return result


def _position(node: CommentedMap | CommentedSeq, key: Any, *, is_item: bool) -> int:
    """1-based line of a key or item; keys merged in with ``<<`` fall back to the map."""
    try:
        line, _col = node.lc.item(key) if is_item else node.lc.key(key)
    except (KeyError, IndexError, TypeError):
        line = node.lc.line
    return int(line) + 1


def _key(key: Any) -> str | int:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, int) and not isinstance(key, bool | ScalarBoolean):
        return int(key)
    return str(key)


def _scalar(node: Any) -> Any:
    if isinstance(node, ScalarBoolean | bool):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node
