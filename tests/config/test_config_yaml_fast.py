"""The libyaml path of ``load_yaml`` gives what the round-trip loader gives.

Same data, same line of every key path, same error (line and message) — for the
shipped configs and for the corners where YAML 1.1 (libyaml's) and YAML 1.2
(ruamel's) differ, or where the fast path must hand over to the round-trip loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT
from watchtower import yamlpos
from watchtower.yamlfast import Unsupported, load_fast
from watchtower.yamlpos import MAX_NODES, YamlSyntaxError, load_yaml, load_yaml_roundtrip

SHIPPED = sorted([*ROOT.glob("config/*.yaml"), ROOT / "src/watchtower/demo/watchtower-demo.yaml"])
ALL_YAML = sorted([*SHIPPED, *ROOT.glob("seeds/*.yaml"), *ROOT.glob("src/watchtower/demo/*.yaml")])

CORNERS = {
    "yaml 1.1 words": "a: yes\nb: no\nc: on\nd: off\ne: y\nf: Yes\n",
    "numbers": "a: 017\nb: 0o17\nc: 0x1f\nd: 1_000\ne: 1:30\nf: 1e3\ng: .inf\nh: -.NaN\ni: +12\n",
    "bools and nulls": "a: true\nb: False\nc: TRUE\nd: ~\ne: null\nf:\ng: Null\n",
    "timestamps": "a: 2026-01-01\nb: 2026-01-01 10:00:00\nc: 2026-01-01T10:00:00Z\n",
    "explicit tags": "a: !!str 12\nb: !!int '7'\nc: !!map {x: 1}\nd: !!seq [1]\n",
    "strings": "a: 'yes'\nb: \"0x1f\"\nc: ! 12\nd: '12'\n",
    "block scalars": "e: |\n  two\n  lines\nf: >-\n  folded\n  text\n",
    "unicode": 'a: "caf\\u00e9 \\U0001F600"\nb: 北朝鮮\n',
    "int keys": "1: one\n2: two\ntrue: yes\n",
    "nested": "sources:\n  - name: A\n    feed: https://a\n  -\n    name: B\n    every: 30m\n",
    "flow": "a: {b: [1, 2, {c: d}], e: f}\n",
    "anchors": "x: &A {k: v}\ny: *A\nz: [*A, *A]\n",
    "merge key": "base: &B {every: 1h}\nsrc:\n  <<: *B\n  name: A\n",
    "duplicate key": "a: 1\nb: 2\na: 3\n",
    "duplicate nested": "s:\n  - name: a\n    name: b\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "tab": "a:\n\tb: 1\n",
    "unclosed": "a: [1, 2\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "yaml 1.1 directive": "%YAML 1.1\n---\na: yes\n",
    "yaml 1.2 directive": "%YAML 1.2\n---\na: yes\n",
    "unknown tag": "a: !env HOME\n",
    "omap": "a: !!omap [{x: 1}]\n",
    "set": "a: !!set {x, y}\n",
    "binary": "a: !!binary aGVsbG8=\n",
    "complex key": "? [a, b]\n: c\n",
    "recursive": "a: &A [*A]\n",
    "undefined alias": "a: *nope\n",
    "empty": "",
    "comment only": "# nothing\n",
    "scalar root": "just text\n",
    "list root": "- a\n- b\n",
    "json": '{"store": "sqlite:///x.db", "sources": [{"name": "A", "feed": "https://a"}]}',
    "nul": "a: b\x00c\n",
    "bom": "\ufeffa: 1\n",
    "crlf": "a: 1\r\nb:\r\n  - x\r\n",
    "long key": "? " + "k" * 2000 + "\n: v\n",
}


@pytest.fixture(autouse=True)
def _fast_path_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short documents normally go to the round-trip loader: here they take the fast
    path too, so that it is what is compared."""
    monkeypatch.setattr(yamlpos, "FAST_FROM", 0)


def _outcome(load: object, text: str) -> tuple[object, ...]:
    try:
        doc = load(text)  # type: ignore[operator]
    except YamlSyntaxError as exc:
        return ("error", exc.line, exc.message)
    return ("ok", doc.data, dict(doc.lines))


@pytest.mark.parametrize("name", sorted(CORNERS))
def test_corner_cases_load_as_the_round_trip_loader_loads_them(name: str) -> None:
    text = CORNERS[name]
    # repr: a TaggedScalar (an unknown tag) has no equality of its own
    assert repr(_outcome(load_yaml, text)) == repr(_outcome(load_yaml_roundtrip, text))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_shipped_configs_take_the_fast_path_with_the_same_result(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    data, lines = load_fast(text, MAX_NODES)
    reference = load_yaml_roundtrip(text)
    assert data == reference.data
    assert lines == dict(reference.lines)


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_shipped_yaml_file_loads_as_with_the_round_trip_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert repr(_outcome(load_yaml, text)) == repr(_outcome(load_yaml_roundtrip, text))


@pytest.mark.parametrize(
    "name",
    ["merge key", "duplicate key", "unknown tag", "recursive", "int keys", "yaml 1.1 directive"],
)
def test_what_the_fast_path_does_not_read_goes_to_the_round_trip_loader(name: str) -> None:
    with pytest.raises(Unsupported):
        load_fast(CORNERS[name], MAX_NODES)


def test_an_alias_bomb_is_refused_with_the_round_trip_message() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdef":
        prev = chr(ord(level) - 1)
        text += f"{level}: &{level} [{', '.join(['*' + prev] * 10)}]\n"
    assert _outcome(load_yaml, text) == _outcome(load_yaml_roundtrip, text)
    assert _outcome(load_yaml, text)[0] == "error"
