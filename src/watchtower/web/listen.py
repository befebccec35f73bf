"""Where the review page listens: ``HOST:PORT`` parsing and the loopback check.

Kept apart from :mod:`watchtower.web.server` so that validating a config (``web.listen``
needs ``web.auth`` off loopback) imports no web server (uvicorn, Starlette).
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback", "parse_listen"]


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` → ``("127.0.0.1", 8080)``; ``"[::1]:8080"`` → ``("::1", 8080)``.

    The host is required (an empty host would mean every interface: write ``0.0.0.0``
    or ``[::]`` for that). Raises :class:`ValueError` with a readable message.
    """
    text = listen.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{listen!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{listen!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    port = int(port_text)
    if not host:
        raise ValueError(f"{listen!r} has no host (e.g. 127.0.0.1:{port_text})")
    if not 0 <= port <= 65535:
        raise ValueError(f"{listen!r}: port must be 0..65535")
    return host, port


def is_loopback(listen: str) -> bool:
    """True when ``listen`` (``HOST:PORT`` or a bare host) binds only a loopback address.

    ``127.0.0.0/8``, ``::1`` and the name ``localhost`` are loopback; ``0.0.0.0``, ``::``,
    any other address or host name is not (so it needs ``web.auth``). An unreadable
    value is not loopback.
    """
    try:
        host, _ = parse_listen(listen)
    except ValueError:
        host = listen.strip().strip("[]")
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
