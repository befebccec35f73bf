"""Make untrusted feed and page text safe for email and webhook bodies.

Everything that came from the web (titles, outlet names, URLs, diff lines) is
untrusted. The rules here are small and strict:

* :func:`safe_url` lets only absolute ``http``/``https`` URLs through; anything else
  (``javascript:``, ``data:``, relative paths, control characters) becomes ``None`` and
  is shown as text, never as a link.
* :func:`plain_text` turns a fragment that may contain markup into one line of plain
  text (tags dropped, ``<script>``/``<style>`` dropped with their content, entities
  decoded). Templates then escape it again on output.
* :func:`clean_html` re-sanitises a rendered HTML fragment with an allow-list (nh3):
  only the structural tags our templates use, ``href`` only on ``<a>`` and only
  http(s), no images, no scripts, no remote styles, no event handlers.
* :func:`one_line` makes a value safe for an email header (no CR/LF, bounded length).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import nh3

__all__ = ["ALLOWED_TAGS", "clean_html", "one_line", "plain_text", "safe_url"]

#: Tags our HTML templates produce; everything else is stripped by :func:`clean_html`.
ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "dd", "div", "dl", "dt", "em", "h1", "h2",
        "h3", "hr", "i", "li", "ol", "p", "pre", "small", "span", "strong", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "*": {"class"},
    "td": {"colspan"},
    "th": {"colspan"},
}
_DROP_WITH_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "svg"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACE = re.compile(r"\s+")


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host and no control characters.

    Returns ``None`` for anything else, so a template shows text instead of a link.
    """
    if not url:
        return None
    url = url.strip()
    if _CONTROL.search(url) or " " in url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return None
    return url


def plain_text(value: str | None, *, limit: int | None = None, markup: bool = True) -> str:
    """One line of plain text from a value that may contain markup or entities.

    With ``markup`` (for feed titles, which come back raw), tags are dropped
    (``<script>`` and ``<style>`` with their content) and entities decoded; without it
    the value is taken as literal text. Control characters and runs of whitespace
    become one space. The result is *text*: escape it on output.
    """
    if not value:
        return ""
    if markup and ("<" in value or "&" in value):
        stripped = nh3.clean(value, tags=set(), clean_content_tags=_DROP_WITH_CONTENT)
        value = html.unescape(stripped)
    text = _SPACE.sub(" ", _CONTROL.sub(" ", value)).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def one_line(value: str | None, limit: int = 200) -> str:
    """A header-safe single line: plain text, no CR/LF, at most ``limit`` characters."""
    return plain_text(value, limit=limit)


def clean_html(fragment: str) -> str:
    """Re-sanitise an HTML fragment with the allow-list (see module docstring).

    ``<a>`` keeps ``href`` only for http(s) URLs and gets ``rel="noopener noreferrer"``;
    ``<img>``, ``<script>``, ``<style>``, ``<form>``, ``<svg>``, ``<iframe>``, inline
    ``style`` and every ``on*`` attribute are removed.
    """
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
        strip_comments=True,
        attribute_filter=_filter_attribute,
    )


def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    if tag == "a" and attr == "href":
        return safe_url(value)
    return value
