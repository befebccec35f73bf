"""The fast path of :func:`watchtower.yamlpos.load_yaml`: libyaml's parser, YAML 1.2 values.

ruamel.yaml's round-trip loader (the reference) is pure Python: about 0.3 s per
thousand configured sources. Here libyaml (PyYAML's C parser) builds the node tree,
with the line of every node, and each scalar gets the tag and value ruamel.yaml gives
it (ruamel's YAML 1.2 resolver and safe constructor), so the data and lines are those
the round-trip loader returns.

Only plain documents take this path. Anything else — a syntax error, a duplicate key,
a tag written in the document, a ``%YAML`` directive, a timestamp, a key that is no
string or integer, a merge key (``<<``), a recursive alias, too many nodes, no
libyaml — raises :class:`Unsupported`, and the caller uses the round-trip loader,
whose messages and behaviour are the reference.
"""

from __future__ import annotations

import re
from typing import Any

Loc = tuple[str | int, ...]

# Tags the resolver gives are marked: a tag written in the document (``!!str 12``,
# ``!env``) is left to the round-trip loader, which treats it its own way.
_IMPLICIT = "implicit:"
_STR = _IMPLICIT + "tag:yaml.org,2002:str"
_MAP = _IMPLICIT + "tag:yaml.org,2002:map"
_SEQ = _IMPLICIT + "tag:yaml.org,2002:seq"
_CORE_SCALARS = frozenset(
    f"{_IMPLICIT}tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")
)
_DIRECTIVE = re.compile(r"^%", re.MULTILINE)


class Unsupported(Exception):
    """This document needs the round-trip loader."""


def load_fast(text: str, max_nodes: int) -> tuple[Any, dict[Loc, int]]:
    """``(data, lines)`` of one YAML document, as the round-trip loader gives them;
    raises :class:`Unsupported` when the document is not for this path."""
    if _DIRECTIVE.search(text):  # %YAML 1.1 changes how scalars read
        raise Unsupported("directive")
    try:
        import yaml  # type: ignore[import-untyped]
        from ruamel.yaml import YAML

        loader_base: Any = yaml.CSafeLoader
    except (ImportError, AttributeError) as exc:  # no libyaml: the pure path only
        raise Unsupported("no libyaml") from exc
    ruamel = YAML(typ="safe", pure=True)
    resolver, constructor = ruamel.resolver, ruamel.constructor
    from ruamel.yaml.nodes import ScalarNode as RuamelScalar

    class Loader(loader_base):  # type: ignore[misc]
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode:
                if not implicit[0]:  # quoted, or tagged '!': a string (YAML 1.2)
                    return _STR
                return _IMPLICIT + str(resolver.resolve(RuamelScalar, value, implicit))
            return _IMPLICIT + str(super().resolve(kind, value, implicit))

    loader = Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise Unsupported(str(exc)) from exc
    finally:
        loader.dispose()
    builder = _Builder(constructor, RuamelScalar, max_nodes)
    data = builder.plain(root, ()) if root is not None else None
    return data, builder.lines


class _Builder:
    """Plain data and key lines from a libyaml node tree."""

    def __init__(self, constructor: Any, scalar_node: type, max_nodes: int) -> None:
        self.lines: dict[Loc, int] = {}
        self._constructor = constructor
        self._scalar_node = scalar_node
        self._left = max_nodes
        self._active: set[int] = set()

    def plain(self, node: Any, loc: Loc) -> Any:
        self._left -= 1
        if self._left < 0:
            raise Unsupported("too many nodes")
        if node.tag in _CORE_SCALARS and isinstance(node.value, str):
            return self._scalar(node)
        if id(node) in self._active or node.tag not in (_MAP, _SEQ):
            raise Unsupported(f"node {node.tag}")
        self._active.add(id(node))
        try:
            if node.tag == _MAP:
                return self._mapping(node, loc)
            return self._sequence(node, loc)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: Any) -> Any:
        if node.tag == _STR:
            return node.value
        tag = node.tag[len(_IMPLICIT) :]
        value = self._constructor.construct_object(
            self._scalar_node(tag, node.value, style=node.style), deep=True
        )
        if isinstance(value, bool | int | float | str) or value is None:
            return value
        raise Unsupported(f"scalar {type(value).__name__}")

    def _mapping(self, node: Any, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag not in _CORE_SCALARS or key_node.value == "<<":
                raise Unsupported("complex or merge key")
            key = self._scalar(key_node)
            if isinstance(key, bool) or not isinstance(key, int | str):  # True == 1...
                raise Unsupported("key that is no string or integer")
            plain_key = key if isinstance(key, int) else str(key)
            if plain_key in result:
                raise Unsupported("duplicate key")
            self.lines.setdefault(loc + (plain_key,), key_node.start_mark.line + 1)
            result[plain_key] = self.plain(value_node, loc + (plain_key,))
        return result

    def _sequence(self, node: Any, loc: Loc) -> list[Any]:
        result = []
        for index, item in enumerate(node.value):
            self.lines.setdefault(loc + (index,), item.start_mark.line + 1)
            result.append(self.plain(item, loc + (index,)))
        return result
