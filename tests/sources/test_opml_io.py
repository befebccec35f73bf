"""OPML import (a feed reader's export) and export (`watchtower sources export`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LoopbackHTTP, Response
from watchtower.errors import ConfigError
from watchtower.sources.opml import OpmlFeed, export_opml, read_opml

READER_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Human rights" title="Human rights">
      <outline type="rss" text="HRW Asia" title="HRW: Asia"
               xmlUrl="https://www.hrw.org/rss/asia" htmlUrl="https://www.hrw.org"/>
      <outline text="Nested folder">
        <outline type="rss" text="NK News &amp; Analysis" xmlUrl="https://nknews.example/feed/"/>
      </outline>
    </outline>
    <outline type="atom" text="UN OHCHR" xmlurl="https://ohchr.example/en/news.atom"/>
    <outline type="rss" text="Duplicate of HRW" xmlUrl="HTTPS://WWW.HRW.ORG/rss/asia#x"/>
    <outline type="rss" text="Local file" xmlUrl="file:///etc/passwd"/>
    <outline type="rss" text="Script" xmlUrl="javascript:alert(1)"/>
    <outline type="link" text="Just a link" url="https://example.org/"/>
    <outline type="rss" xmlUrl="https://untitled.example/rss"/>
  </body>
</opml>
"""


def write(tmp_path: Path, text: str | bytes, name: str = "feeds.opml") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def test_reader_export_is_flattened_filtered_and_deduplicated(tmp_path: Path) -> None:
    feeds = read_opml(write(tmp_path, READER_EXPORT))
    assert feeds == [
        OpmlFeed("HRW: Asia", "https://www.hrw.org/rss/asia"),
        OpmlFeed("NK News & Analysis", "https://nknews.example/feed/"),
        OpmlFeed("UN OHCHR", "https://ohchr.example/en/news.atom"),
        OpmlFeed("https://untitled.example/rss", "https://untitled.example/rss"),
    ]


def test_export_round_trips_through_import(tmp_path: Path) -> None:
    pairs = [
        ('HRW: Asia <"quoted"> & more', "https://www.hrw.org/rss/asia?lang=en&x=1"),
        ("Ctrl\x01chars\x0b dropped", "https://nknews.example/feed/"),
        (None, "https://untitled.example/rss"),
    ]
    text = export_opml(pairs)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    feeds = read_opml(write(tmp_path, text))
    assert feeds == [
        OpmlFeed('HRW: Asia <"quoted"> & more', "https://www.hrw.org/rss/asia?lang=en&x=1"),
        OpmlFeed("Ctrlchars dropped", "https://nknews.example/feed/"),
        OpmlFeed("https://untitled.example/rss", "https://untitled.example/rss"),
    ]


def test_export_of_nothing_is_valid_opml(tmp_path: Path) -> None:
    assert read_opml(write(tmp_path, export_opml([]))) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<opml><body><outline xmlUrl='https://a.example/rss'></body>", ":1: not valid OPML"),
        ("<?xml version='1.0'?>\n<rss><channel/></rss>", ":2: not an OPML file"),
        ("<opml version='2.0'><head/></opml>", "OPML has no <body>"),
        ("", "not valid OPML"),
        ("<opml><body>\n<outline text='&nbsp;' xmlUrl='https://a.example/'/></body></opml>",
         ":2: not valid OPML"),
    ],
)  # fmt: skip
def test_invalid_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_opml(path)
    problem = caught.value.problems[0]
    assert problem.startswith(f"{path}:")
    assert message in problem


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPML file not found"):
        read_opml(tmp_path / "nope.opml")
    with pytest.raises(ConfigError, match="is a directory"):
        read_opml(tmp_path)


def test_binary_garbage_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid OPML"):
        read_opml(write(tmp_path, bytes(range(256)) * 10))


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE opml [\n <!ENTITY a "aaaaaaaaaa">\n'
        ' <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n'
        ' <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">\n]>\n'
        '<opml><body><outline text="&c;" xmlUrl="https://a.example/"/></body></opml>'
    )
    with pytest.raises(ConfigError, match=r":3: OPML declares XML entities"):
        read_opml(write(tmp_path, laughs))
    xxe = (
        '<?xml version="1.0"?>\n<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<opml><body><outline text="&x;" xmlUrl="https://a.example/"/></body></opml>'
    )
    with pytest.raises(ConfigError, match="entities"):
        read_opml(write(tmp_path, xxe))


def test_external_dtd_is_never_fetched(tmp_path: Path, http_server: LoopbackHTTP) -> None:
    http_server.routes["/x.dtd"] = Response(200, {"Content-Type": "application/xml-dtd"}, b"")
    text = (
        f'<?xml version="1.0"?>\n<!DOCTYPE opml SYSTEM "{http_server.url("/x.dtd")}">\n'
        '<opml version="2.0"><body><outline text="A" xmlUrl="https://a.example/rss"/></body></opml>'
    )
    assert read_opml(write(tmp_path, text)) == [OpmlFeed("A", "https://a.example/rss")]
    assert http_server.requests_to("/x.dtd") == []


def test_too_large_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.opml"
    with path.open("wb") as out:
        out.truncate(10_000_001)
    with pytest.raises(ConfigError, match="too large"):
        read_opml(path)


def test_xml_encodings_are_honoured(tmp_path: Path) -> None:
    text = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<opml version="1.1"><body>'
        '<outline text="Menschenrechte f\xfcr alle" xmlUrl="https://de.example/feed"/>'
        "</body></opml>"
    )
    feeds = read_opml(write(tmp_path, text.encode("latin-1")))
    assert feeds == [OpmlFeed("Menschenrechte für alle", "https://de.example/feed")]
