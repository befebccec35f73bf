"""Showing URLs without their secrets: the one place that masks a URL's password.

* :func:`mask_url` keeps a URL readable and replaces the password of its user-info
  with ``***``, whatever characters the password holds (``/``, ``@``, ``:``…): what logs,
  ``status``, ``alerts``, metrics labels, webhook bodies and ``check`` show.
* :func:`public_url` is shorter still, for summaries: scheme, host, port and path, with
  no user-info at all and the query reduced to ``?…`` (queries often carry tokens).

Neither raises; text that is not a URL comes back unchanged.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MASK = "***"


def _userinfo_end(rest: str) -> int:
    """Index in ``rest`` (the URL after ``scheme://``) of the ``@`` ending the user-info."""
    end = len(rest)
    for mark in ("?", "#"):
        at = rest.find(mark)
        if at >= 0:
            end = min(end, at)
    return rest.rfind("@", 0, end)


def _userinfo(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, user, password, rest after the ``@``) of a URL with ``user:password@``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = rest
    if "@" not in netloc:
        # A password holding "/" ends the parsed authority early ("user:pa"), leaving a
        # "port" that is not a number; a real host:port is left alone.
        _host, colon, port = netloc.partition(":")
        if not colon or port.isdigit() or port == "":
            return None
    at = _userinfo_end(rest)
    head = rest[:at] if at > 0 else ""
    if ":" not in head:
        return None
    user, _, password = head.partition(":")
    return scheme, user, password, rest[at + 1 :]


def mask_url(url: str) -> str:
    """``url`` with the password of its user-info (if any) replaced by ``***``.

    ``postgresql://wt:pa/ss@word@db/wt`` → ``postgresql://wt:***@db/wt``. A URL whose
    authority has no ``user:password@`` part is returned as it is.
    """
    parts = _userinfo(url)
    if parts is None:
        return url
    scheme, user, _password, rest = parts
    return f"{scheme}://{user}:{MASK}@{rest}"


def mask_secret_url(url: str) -> str:
    """A URL that is a secret as a whole (an Apprise URL): only its scheme, ``ntfy://***``."""
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def url_password(url: str | None) -> str | None:
    """The password in ``url``'s user-info as written (maybe percent-encoded), or None."""
    parts = _userinfo(url or "")
    return parts[2] or None if parts else None


def public_url(url: str) -> str:
    """scheme://host[:port]/path, without credentials or query (they may hold tokens)."""
    parts = urlsplit(mask_url(url))
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"
