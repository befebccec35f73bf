"""Which network addresses Watchtower may connect to.

Feeds and pages are chosen by strangers (and redirect wherever they like), so by
default Watchtower refuses to connect to anything that is not a public unicast
address: loopback, private (RFC 1918, ULA), link-local (including the cloud metadata
address 169.254.169.254), multicast, reserved, unspecified, shared (CGNAT) and other
special-purpose ranges. IPv4-mapped and NAT64/6to4 forms are judged by the IPv4
address they carry.

The check is made on the *resolved* address at connect time (see
:mod:`watchtower.fetch`), so neither redirects nor DNS rebinding can bypass it.

``allow_private=True`` (config ``fetch.allow_private_addresses``) turns the check off
for intranet sources. ``allowed_endpoints`` is a narrower escape hatch: exact
``(ip, port)`` pairs that are allowed even when the policy is on (tests use it to
reach one loopback server while every other private address stays refused).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from watchtower.errors import AddressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried by an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(address: str | IPAddress) -> str | None:
    """Why ``address`` is not public (``"loopback"``, ``"private"``…), or None if public.

    A string that is not an IP address is classed ``"invalid"``.
    """
    try:
        ip: IPAddress = (
            ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
        )
    except ValueError:
        return "invalid"
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return classify(inner)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Decides whether a connection to ``(ip, port)`` may be made.

    ``allow_private`` allows every address. ``allowed_endpoints`` allows exact
    ``(ip, port)`` pairs only (the ip in its canonical text form).
    """

    allow_private: bool = False
    allowed_endpoints: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls, *, allow_private: bool, allowed_endpoints: Iterable[tuple[str, int]] = ()
    ) -> AddressPolicy:
        canon = frozenset(
            (str(ipaddress.ip_address(ip)), int(port)) for ip, port in allowed_endpoints
        )
        return cls(allow_private=allow_private, allowed_endpoints=canon)

    def refusal(self, ip: str, port: int) -> str | None:
        """A short reason why connecting to ``ip:port`` is refused, or None if allowed."""
        if self.allow_private:
            return None
        kind = classify(ip)
        if kind is None:
            return None
        try:
            canon = str(ipaddress.ip_address(ip.split("%", 1)[0]))
        except ValueError:
            canon = ip
        if (canon, port) in self.allowed_endpoints:
            return None
        return f"{kind} address {canon} refused"

    def check(self, ip: str, port: int, *, url: str | None = None) -> None:
        """Raise :class:`AddressRefused` unless connecting to ``ip:port`` is allowed."""
        reason = self.refusal(ip, port)
        if reason is not None:
            raise AddressRefused(reason, url=url)


def check_scheme(scheme: str, *, url: str | None = None, redirect: bool = False) -> None:
    """Raise :class:`AddressRefused` unless ``scheme`` is http or https."""
    if scheme.lower() not in ALLOWED_SCHEMES:
        shown = (scheme or "relative")[:20]
        prefix = "redirect to " if redirect else ""
        raise AddressRefused(f"{prefix}{shown}: URL refused (only http and https)", url=url)
