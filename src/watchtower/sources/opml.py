"""OPML feed lists: import a feed reader's export, export Watchtower's feeds.

* :func:`read_opml` — every ``<outline xmlUrl=…>`` at any depth (folders flattened),
  only ``http(s)`` URLs, each URL once (compared in canonical form, returned as
  written), in document order.
* :func:`export_opml` — (title, url) pairs → OPML 2.0 text.

The file is parsed without network access, without loading a DTD and without
expanding entities; a file that declares entities is refused outright (no
billion-laughs, no external entities). Every problem is a
:class:`~watchtower.errors.ConfigError` reading ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]

from watchtower.errors import ConfigError
from watchtower.sources.normalize import canonical_url

log = logging.getLogger(__name__)

MAX_OPML_BYTES = 10_000_000
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed from an OPML file: its title (falls back to the URL) and its URL."""

    title: str
    url: str


def read_opml(path: Path) -> list[OpmlFeed]:
    """The feeds listed in the OPML file at ``path``. Raises :class:`ConfigError`."""
    data = _read_bytes(path)
    declaration = _ENTITY_DECL.search(data)
    if declaration:
        line = data[: declaration.start()].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: OPML declares XML entities, which are refused")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or (exc.position[0] if exc.position else 0)
        message = str(exc.msg or exc).split(", line ")[0]
        raise ConfigError(f"{path}:{line}: not valid OPML (XML error: {message})") from exc
    if _local(root.tag) != "opml":
        raise ConfigError(
            f"{path}:{root.sourceline or 1}: not an OPML file (root element is "
            f"<{_local(root.tag)}>, expected <opml>)"
        )
    body = next((el for el in root if _local(el.tag) == "body"), None)
    if body is None:
        raise ConfigError(f"{path}:{root.sourceline or 1}: OPML has no <body>")
    return _feeds(path, body)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_OPML_BYTES:
            raise ConfigError(f"{path}: OPML file too large ({size} bytes, limit 10 MB)")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: OPML file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, expected an OPML file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read OPML file ({exc.strerror or exc})") from exc


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _attr(element: etree._Element, name: str) -> str:
    """An attribute by case-insensitive name (exporters write xmlUrl, xmlurl, XMLURL)."""
    for key, value in element.attrib.items():
        if isinstance(key, str) and key.lower() == name:
            return str(value).strip()
    return ""


def _feeds(path: Path, body: etree._Element) -> list[OpmlFeed]:
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for outline in body.iter():
        if _local(outline.tag) != "outline":
            continue
        url = _attr(outline, "xmlurl")
        if not url:
            continue  # a folder, or a plain link outline
        key = canonical_url(url)
        if key is None:
            log.warning("%s:%s: skipping an outline whose xmlUrl is not http(s)",
                        path, outline.sourceline)  # fmt: skip
            continue
        if key in seen:
            log.info("%s:%s: skipping a duplicate feed", path, outline.sourceline)
            continue
        seen.add(key)
        title = _attr(outline, "title") or _attr(outline, "text") or url
        feeds.append(OpmlFeed(title=" ".join(title.split())[:300], url=url))
    return feeds


def export_opml(feeds: Sequence[tuple[str | None, str]], title: str = "Watchtower feeds") -> str:
    """OPML 2.0 text listing ``feeds`` as (title, url) pairs, in the given order.

    A missing title is replaced by the URL.
    Characters that XML cannot hold are dropped; everything else is escaped, so any
    title round-trips through :func:`read_opml`.
    """
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = _xml_text(title)
    body = etree.SubElement(root, "body")
    for name, url in feeds:
        label = _xml_text(" ".join((name or url).split()))
        etree.SubElement(
            body,
            "outline",
            type="rss",
            text=label,
            title=label,
            xmlUrl=_xml_text(url),
        )
    text: str = etree.tostring(root, encoding="unicode", pretty_print=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text


def _xml_text(value: str) -> str:
    return _XML_INVALID.sub("", value)
