"""Watched web pages: fetched bytes → the watched text, and what changed since last time.

:func:`parse_page` is the whole interface. The *watched region* is

* with ``select`` — every element matching that CSS selector (bs4 ``.select``), minus
  the elements matching any ``exclude_select`` selector (scripts and styles never count);
* without — the page's main text as trafilatura extracts it, tuned for precision so
  navigation, footers, sidebars and "most read" boxes never count; when trafilatura
  finds nothing, the ``<main>``/``<article>``/``<body>`` text minus ``nav``, ``header``,
  ``footer``, ``aside`` and hidden blocks.

The region becomes whitespace-normalised lines (one per paragraph, list item, heading,
table row) plus its http(s) links. Lines are compared with the previous snapshot on a
key that leaves out volatile text (``ignore`` regexes plus
:data:`watchtower.sources.diff.DEFAULT_IGNORE`); see :mod:`watchtower.sources.diff`.

What a poll yields:

* first poll (``previous is None``): nothing — the snapshot is only established, so
  adding a page never alerts on everything already on it (links included);
* later polls: when the region is a list of links (a press-release index: at least
  three links and link text ≥ 40 % of the text), each *new* link is one entry, like a
  feed item (title = link text, url = guid = canonical link); added text not covered
  by those links, or any added text on other pages, is *one* entry for the change
  (``diff`` = the added lines, guid = hash of their keys);
* deletions and changes to ignored text only produce nothing (``removed`` lists the
  deleted lines for the record).

Every failure a user must see is a :class:`~watchtower.errors.ParseError`: not a web
page, too large, a selector that is invalid or matches nothing, no readable text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import soupsieve
import trafilatura
from bs4 import BeautifulSoup
from bs4.element import CData, NavigableString, Tag
from lxml import etree

from watchtower.errors import ParseError
from watchtower.models import Entry, FetchResult
from watchtower.sources.decode import MAX_PAGE_BYTES, check_body, check_text, decode_page
from watchtower.sources.diff import (
    LineDiff,
    compile_ignore,
    diff_lines,
    dump_snapshot,
    load_snapshot,
)
from watchtower.sources.normalize import canonical_url

__all__ = ["MAX_PAGE_BYTES", "PageParse", "decode_page", "parse_page"]

log = logging.getLogger(__name__)

#: Bounds on what one page contributes to a snapshot and to entries.
MAX_LINES = 20_000
MAX_LINE_CHARS = 5_000
MAX_LINKS = 5_000
MAX_SUMMARY_CHARS = 20_000
MAX_DIFF_LINES = 100
#: A link list counts this share of its text as link text.
LINK_LIST_RATIO = 0.4
#: More new links than this, making up over half the list, is a redesign: record only.
MAX_NEW_LINKS = 20

_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]{1,40})""", re.I)
_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")

_DROP = frozenset(("script", "style", "noscript", "template", "iframe", "object", "embed",
                   "svg", "canvas", "head", "title", "select", "option", "button"))  # fmt: skip
# Not <form>: ASP.NET pages wrap the whole page in one.
_BOILERPLATE_TAGS = frozenset(("nav", "header", "footer", "aside", "menu", "dialog"))
_BOILERPLATE_ROLES = frozenset(
    ("navigation", "banner", "contentinfo", "complementary", "search", "menu", "dialog")
)
_BLOCKS = frozenset(
    "address article aside blockquote body caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main nav "
    "ol p pre section summary table tbody thead tfoot tr ul center".split()
)
_CELLS = frozenset(("td", "th"))


@dataclass(frozen=True, slots=True)
class PageParse:
    """The result of one page poll.

    ``entries``: new links and the added text (empty on a first poll). ``snapshot``:
    the watched text to store and pass back as ``previous`` next time. ``page_hash``:
    sha256 hex of ``snapshot``. ``removed``: deleted lines (recorded, never alerted).
    """

    entries: tuple[Entry, ...]
    snapshot: str
    page_hash: str
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Link:
    """A link of the watched region; ``context`` is the text of the line(s) holding it
    (a list item, table row or paragraph), or the link text when that is too long."""

    url: str
    text: str
    context: str


@dataclass(frozen=True, slots=True)
class _Watched:
    title: str
    lines: tuple[str, ...]
    links: tuple[_Link, ...]


def parse_page(
    result: FetchResult,
    *,
    source: str,
    select: str | None = None,
    exclude_select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    previous: str | None = None,
    default_ignore: bool = True,
) -> PageParse:
    """Read a fetched page and report what was added since ``previous`` (a snapshot).

    ``select``/``exclude_select`` are CSS selectors; ``ignore`` are regexes of volatile
    text, applied per line in addition to the built-in date/time/counter patterns
    (``default_ignore=False`` turns those off). Raises :class:`ParseError` with a short
    reason when the body is not a readable page or the selector matches nothing.
    """
    if result.not_modified:
        raise ParseError("nothing to parse: the server answered 304 Not Modified")
    patterns = compile_ignore(ignore, defaults=default_ignore)
    watched = _watch(result, select, tuple(exclude_select))
    if not watched.lines:
        raise ParseError(
            "no readable text on the page"
            + ("" if select else " (built by JavaScript? watch a JSON Feed or API instead)")
        )
    snapshot = dump_snapshot(watched.lines, [(link.url, link.text) for link in watched.links])
    page_hash = hashlib.sha256(snapshot.encode("utf-8", "surrogatepass")).hexdigest()
    if not previous:  # first poll (an empty snapshot is never stored: see ParseError above)
        return PageParse((), snapshot, page_hash, ())
    before = load_snapshot(previous)
    change = diff_lines(before.lines, watched.lines, patterns)
    new_links: list[_Link] = []
    if before.links is not None:
        known = {url for url, _ in before.links}
        new_links = [link for link in watched.links if link.url not in known]
    entries = _entries(source, canonical_url(result.url) or result.url, watched, change,
                       new_links)  # fmt: skip
    return PageParse(tuple(entries), snapshot, page_hash, change.removed)


# --- decoding -------------------------------------------------------------------------


# --- the watched region -----------------------------------------------------------------


def _watch(result: FetchResult, select: str | None, exclude: tuple[str, ...]) -> _Watched:
    check_body(result)
    text = decode_page(result)
    check_text(text)
    text = _XML_PROLOG.sub("", text, count=1)
    plain = result.content_type.lower().startswith("text/plain") or "<" not in text
    if plain:
        if select:
            raise ParseError(f"selector {select!r} cannot apply: the page is plain text")
        return _Watched("", _lines(_SPACE.sub(" ", line) for line in text.splitlines()), ())
    if select:
        return _watch_selected(text, result.url, select, exclude)
    return _watch_main(text, result.url, exclude)


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")


def _css(soup: BeautifulSoup, selector: str) -> list[Tag]:
    try:
        return list(soup.select(selector))
    except (soupsieve.SelectorSyntaxError, ValueError, NotImplementedError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParseError(f"invalid CSS selector {selector!r}: {reason}") from exc


def _watch_selected(html: str, url: str, select: str, exclude: tuple[str, ...]) -> _Watched:
    soup = _soup(html)
    title, base = _soup_title(soup), _soup_base(soup, url)
    for selector in exclude:
        for tag in _css(soup, selector):
            tag.decompose()
    regions = _css(soup, select)
    if not regions:
        raise ParseError(f"selector `{select}` matches nothing on the page")
    reader = _RegionReader(base, url)
    for region in regions:
        reader.read(region)  # a region inside one already read is skipped
    return _Watched(title, _lines(reader.lines), _unique_links(reader.links))


MIN_MAIN_WORDS = 25
"""Below this many words, the extractor's result is not taken to be the page's content."""


def _watch_main(html: str, url: str, exclude: tuple[str, ...]) -> _Watched:
    title, base, extracted = _extract_main(html, url)
    main: _Watched | None = None
    if extracted:
        soup = _soup(extracted)
        if exclude:
            for selector in exclude:
                for tag in _css(soup, selector):
                    tag.decompose()
        reader = _RegionReader(base, url)
        reader.read(soup.body or soup)
        main = _Watched(title, _lines(reader.lines), _unique_links(reader.links))
        if _words(main.lines) >= MIN_MAIN_WORDS:
            return main
    # Little or no article text: an index page (a list of press releases) or a short
    # notice. Read the page's main region instead, boilerplate skipped.
    soup = _soup(html)
    title = title or _soup_title(soup)
    for tag in [t for selector in exclude for t in _css(soup, selector)]:
        if not tag.decomposed:
            tag.decompose()
    reader = _RegionReader(base, url, skip=_is_boilerplate)
    reader.read(_main_region(soup))
    region = _Watched(title, _lines(reader.lines), _unique_links(reader.links))
    if main is not None and _words(main.lines) >= _words(region.lines):
        return main
    return region


def _words(lines: Iterable[str]) -> int:
    return sum(len(line.split()) for line in lines)


def _extract_main(html: str, url: str) -> tuple[str, str, str | None]:
    """(title, base URL, trafilatura's main-content HTML or None)."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        log.debug("lxml could not parse %s: %s", url, exc)
        return "", url, None
    title = _collapse(tree.findtext(".//title") or "")[:300]
    base = url
    for element in tree.iterfind(".//base[@href]"):
        base = canonical_url(element.get("href"), url) or url
        break
    try:
        extracted = trafilatura.extract(
            tree,
            favor_precision=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=True,
            output_format="html",
        )
    except (ValueError, TypeError, RecursionError, etree.LxmlError) as exc:
        log.warning("main-text extraction failed for %s, reading the page body: %s", url, exc)
        extracted = None
    return title, base, extracted


def _soup_title(soup: BeautifulSoup) -> str:
    head = soup.head
    if head is None:
        return ""
    tag = head.find("title")
    if tag is None:
        meta = head.find("meta", attrs={"property": "og:title"})
        content = meta.get("content") if isinstance(meta, Tag) else None
        return _collapse(content)[:300] if isinstance(content, str) else ""
    return _collapse(tag.get_text(" "))[:300]


def _soup_base(soup: BeautifulSoup, url: str) -> str:
    tag = soup.head.find("base", href=True) if soup.head is not None else None
    href = tag.get("href") if isinstance(tag, Tag) else None
    return (canonical_url(href, url) or url) if isinstance(href, str) else url


def _main_region(soup: BeautifulSoup) -> Tag:
    """``<main>`` or ``[role=main]``, else the first ``<article>``, else ``<body>``."""
    article: Tag | None = None
    for node in soup.descendants:
        if not isinstance(node, Tag):
            continue
        if node.name == "main" or node.attrs.get("role") == "main":
            return node
        if article is None and node.name == "article":
            article = node
    return article or soup.body or soup


class _RegionReader:
    """Reads regions in one linear walk (no recursion, no tree edits): block elements
    end lines, table cells are separated by a space, ``<br>`` breaks a line; each
    http(s) link is kept with the line(s) it sits on. Tags already visited (a region
    nested in an earlier one) are skipped, so every part of the page is read once."""

    def __init__(self, base: str, page_url: str, skip: Callable[[Tag], bool] | None = None) -> None:
        self.base, self.here, self.skip = base, canonical_url(page_url), skip
        self.lines: list[str] = []
        self.links: list[_Link] = []
        self._parts: list[str] = []
        self._has_text = False
        self._seen: set[int] = set()
        self._spans: list[tuple[str, str, int, int]] = []

    def read(self, region: Tag) -> None:
        if id(region) in self._seen:
            return
        stack: list[tuple[Any, int]] = [(region, -1)]
        while stack:
            node, start = stack.pop()
            if start >= 0:
                self._leave(node, start)
            elif isinstance(node, Tag):
                if id(node) in self._seen or node.name in _DROP:
                    continue
                if self.skip is not None and self.skip(node):
                    continue
                self._seen.add(id(node))
                self._enter(node)
                stack.append((node, len(self.lines)))
                stack.extend((child, -1) for child in reversed(node.contents))
            elif type(node) is NavigableString or type(node) is CData:
                self._parts.append(node)
                self._has_text = self._has_text or not node.isspace()
        self._flush()
        for url, text, first, last in self._spans:
            context = " ".join(self.lines[first : last + 1])
            self.links.append(_Link(url, text, context if len(context) <= 1000 else text))
        self._spans.clear()

    def _enter(self, tag: Tag) -> None:
        if tag.name in _BLOCKS or tag.name == "br":
            self._flush()

    def _leave(self, tag: Tag, start: int) -> None:
        if tag.name in _BLOCKS:
            self._flush()
        elif tag.name in _CELLS:
            self._parts.append(" ")
        elif tag.name == "a" and len(self._spans) < MAX_LINKS * 2:
            href = tag.get("href")
            url = canonical_url(href, self.base) if isinstance(href, str) else None
            if url is not None and url != self.here:
                last = len(self.lines) if self._has_text else len(self.lines) - 1
                self._spans.append((url, _anchor_text(tag), start, max(start, last)))

    def _flush(self) -> None:
        if self._has_text:
            self.lines.append(_collapse("".join(self._parts))[:MAX_LINE_CHARS])
        self._parts.clear()
        self._has_text = False


def _is_boilerplate(tag: Tag) -> bool:
    """Navigation, headers, footers, sidebars and hidden blocks (fallback only)."""
    if tag.name in _BOILERPLATE_TAGS:
        return True
    attrs = tag.attrs
    if not attrs:
        return False
    role = attrs.get("role")
    return (
        (isinstance(role, str) and role.lower() in _BOILERPLATE_ROLES)
        or "hidden" in attrs
        or str(attrs.get("aria-hidden", "")).lower() == "true"
    )


def _anchor_text(anchor: Tag) -> str:
    text = _collapse(anchor.get_text(" "))
    if not text:
        label = anchor.get("title") or anchor.get("aria-label")
        text = _collapse(label) if isinstance(label, str) else ""
    return text[:500]


def _unique_links(links: list[_Link]) -> tuple[_Link, ...]:
    by_url: dict[str, _Link] = {}
    for link in links:
        known = by_url.get(link.url)
        if known is None:
            by_url[link.url] = link
        elif not known.text and link.text:
            by_url[link.url] = link
    return tuple(link for link in by_url.values() if link.text)[:MAX_LINKS]


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _lines(raw: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for line in raw:
        line = _collapse(line.replace("\x00", ""))
        if line:
            out.append(line[:MAX_LINE_CHARS])
            if len(out) >= MAX_LINES:
                break
    return tuple(out)


# --- entries ------------------------------------------------------------------------------


def _is_link_list(watched: _Watched) -> bool:
    if len(watched.links) < 3:
        return False
    text_chars = sum(len(line) for line in watched.lines)
    link_chars = sum(len(link.text) for link in watched.links)
    return link_chars >= LINK_LIST_RATIO * max(text_chars, 1)


def _entries(
    source: str, page_url: str, watched: _Watched, change: LineDiff, new_links: list[_Link]
) -> list[Entry]:
    entries: list[Entry] = []
    added = list(zip(change.added, change.added_keys, strict=True))
    if new_links and _is_link_list(watched):
        if len(new_links) > MAX_NEW_LINKS and len(new_links) * 2 > len(watched.links):
            log.warning(
                "page %s: %d of %d links are new at once (redesign?): recorded, not alerted",
                source, len(new_links), len(watched.links),
            )  # fmt: skip
        else:
            covered: list[str] = []
            for link in new_links:
                entries.append(_link_entry(source, link))
                covered.extend((link.text.casefold(), link.context.casefold()))
            added = [(line, key) for line, key in added if not _covered(line, covered)]
    if added:
        entries.append(_change_entry(source, page_url, watched.title, added))
    return entries


def _covered(line: str, covered: list[str]) -> bool:
    folded = line.casefold()
    return any(folded in text or (len(text) >= 12 and text in folded) for text in covered)


def _link_entry(source: str, link: _Link) -> Entry:
    return Entry(
        source=source,
        guid=link.url,
        title=link.text,
        url=link.url,
        summary=link.context,
        kind="page",
        diff=(link.context,),
    )


def _change_entry(source: str, page_url: str, title: str, added: list[tuple[str, str]]) -> Entry:
    lines = [line for line, _ in added]
    digest = hashlib.sha256("\n".join(key for _, key in added).encode()).hexdigest()
    return Entry(
        source=source,
        guid=f"page-change:{digest[:32]}",
        title=title or lines[0][:200],
        url=page_url,
        summary="\n".join(lines)[:MAX_SUMMARY_CHARS],
        kind="page",
        diff=tuple(line[:1000] for line in lines[:MAX_DIFF_LINES]),
    )
