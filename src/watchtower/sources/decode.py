"""A fetched page's bytes → text, refusing what is not a page (too big, a feed or a
binary type, binary content). The declared charset (header or ``<meta>``) is used if
usable, else UTF-8, with undecodable bytes replaced rather than refused."""

from __future__ import annotations

import codecs
import re

from watchtower.errors import ParseError
from watchtower.models import FetchResult

#: Bodies above this many bytes are refused rather than parsed.
MAX_PAGE_BYTES = 20_000_000

_REFUSED_TYPES = re.compile(
    r"^(?:image|audio|video|font|model)/|^application/(?:pdf|zip|gzip|x-tar|x-7z|msword"
    r"|vnd\.|ogg|wasm|x-shockwave)",
)
_FEED_TYPES = re.compile(r"^application/(?:rss|atom|feed)\+(?:xml|json)")
_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]{1,40})""", re.I)
_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")


def decode_page(result: FetchResult) -> str:
    """The body as text, never failing: a BOM; else UTF-8 when the body is valid UTF-8
    (mislabelled pages are common, valid UTF-8 by accident is rare); else the
    Content-Type charset, then ``<meta charset>``; else UTF-8 when most non-ASCII
    bytes form valid UTF-8, or windows-1252. Undecodable bytes become U+FFFD."""
    body = result.body
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                      (codecs.BOM_UTF16_BE, "utf-16-be")):  # fmt: skip
        if body.startswith(bom):
            return body[len(bom) :].decode(name, "replace")
    try:
        return body.decode("utf-8")  # valid UTF-8 beats any label: legacy text rarely is
    except UnicodeDecodeError:
        pass
    declared = _charset_param(result.content_type) or _meta_charset(body[:4096])
    if declared and declared != "utf-8":
        return body.decode(declared, "replace")
    text = body.decode("utf-8", "replace")
    broken = text.count("\ufffd")
    multibyte = sum(1 for char in text if char > "\x7f") - broken
    if declared or multibyte > broken:
        return text  # UTF-8 with a few corrupt bytes
    return body.decode("cp1252", "replace")


def _usable_charset(name: str) -> str | None:
    try:
        codec = codecs.lookup(name.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    if codec.name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"  # what browsers do for these labels
    if codec.name.startswith("utf-16") or codec.name.startswith("utf-32"):
        return None  # without a BOM these labels are wrong in practice
    return codec.name


def _charset_param(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return _usable_charset(value)
    return None


def _meta_charset(head: bytes) -> str | None:
    found = _CHARSET.search(head)
    return _usable_charset(found.group(1).decode("ascii")) if found else None


def check_body(result: FetchResult) -> None:
    ctype = result.content_type.split(";")[0].strip().lower()
    if _FEED_TYPES.match(ctype):
        raise ParseError(f"this is a feed ({ctype}), not a page: configure it as feed:")
    if _REFUSED_TYPES.match(ctype):
        raise ParseError(f"not a web page: {ctype}")
    if len(result.body) > MAX_PAGE_BYTES:
        raise ParseError(
            f"page too large to parse: {len(result.body)} bytes (limit {MAX_PAGE_BYTES})"
        )


def check_text(text: str) -> None:
    sample = text[:65536]
    if sample and len(_CONTROL.findall(sample)) > len(sample) // 10:
        raise ParseError("not a web page: the body is binary or in an unknown encoding")
