"""Which hosts and addresses a URL image may come from: the pure half of the SSRF checks (gateway/images/fetch.py).

A host is a fully qualified name or an IP literal in any form resolvers accept; an address is allowed only
if it is globally routable unicast, with the IPv4 embedded in IPv6 forms (mapped, NAT64, 6to4, Teredo)
checked as well.
"""

from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
# Not globally reachable, but `is_global` says so (or did in some Python releases): checked by hand.
_V4_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` denotes if it is an IP literal in any form, else None.

    `inet_aton` accepts the legacy forms resolvers also accept (2130706433, 0177.0.0.1, 0x7f.1,
    127.1), so a host it accepts is a literal and must not be mistaken for a name.
    """
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except (OSError, ValueError):
            return None


def is_fqdn(host: str) -> bool:
    """At least two valid labels and an alphabetic (or IDNA) last label; no suffix list needed."""
    labels = host.split(".")
    return len(host) <= 253 and len(labels) >= 2 and all(map(_LABEL.match, labels)) and bool(_TLD.match(labels[-1]))


def is_public_address(addr: IPAddress) -> bool:
    """True only for globally routable unicast; embedded IPv4 (mapped, NAT64, 6to4, Teredo) is checked."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return is_public_address(addr.ipv4_mapped)
        if addr in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        if addr in _V4_COMPATIBLE:  # ::, ::1 and deprecated ::a.b.c.d: never a real target
            return False
        embedded = [addr.sixtofour, *(addr.teredo or ())]
        if addr.is_site_local or any(e is not None and not is_public_address(e) for e in embedded):
            return False
    elif any(addr in net for net in _V4_SPECIAL):
        return False
    flags = (
        addr.is_private,
        addr.is_loopback,
        addr.is_link_local,
        addr.is_multicast,
        addr.is_reserved,
        addr.is_unspecified,
    )
    return addr.is_global and not any(flags)


def host_in(host: str, entries: tuple[str, ...]) -> bool:
    return any(host == entry or host.endswith("." + entry) for entry in entries)


def normalise_hosts(hosts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(h for h in (raw.strip().strip(".").lower() for raw in hosts) if h)
