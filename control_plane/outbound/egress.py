"""Which addresses a flow may call: the egress rule, checked on the address actually connected to.

Flow authors are tenants: a connector must not reach the operator's own network. By default only
globally routable unicast addresses are allowed; refused are loopback, private (RFC 1918, ULA),
shared (100.64/10, CGNAT), link-local (cloud metadata at 169.254.169.254 among them),
multicast, unspecified, reserved and documentation ranges, and any IPv6 form that embeds a
refused IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16).
`BOOMERANG_EGRESS_ALLOW` (comma-separated CIDRs, a runner setting) opens ranges on purpose,
e.g. `127.0.0.1/32` for tests or `10.1.2.0/24` for an internal API the operator means to offer.

The rule is applied by the transport (transport.py) after DNS resolution, to the very address it
then connects to, for every connection (so every redirect too): there is no window in which a
name could resolve to one address when checked and another when used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The IANA special-purpose registries' ranges that are not globally reachable, listed here as
# well as asked of `ipaddress`: its tables differ between Python versions (3.11 takes
# 192.0.0.192, Oracle Cloud's metadata address, for global).
_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)

# Where an IPv6 address carries an IPv4 one that a gateway would reach.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_COMPAT = ipaddress.IPv6Network("::/96")


class EgressRefused(Exception):
    """A call to an address the egress rule does not allow."""

    type = "egress_refused"
    status = None

    def __init__(self, host: str, address: str, why: str) -> None:
        shown = address if host == address else f"{host} ({address})"
        super().__init__(
            f"egress refused: {shown} is {why}; the runner's BOOMERANG_EGRESS_ALLOW does not "
            "open it"
        )
        self.address = address


def parse_allow(text: str) -> tuple[IPNetwork, ...]:
    """`BOOMERANG_EGRESS_ALLOW`: comma-separated CIDRs (a bare address is its /32 or /128)."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"BOOMERANG_EGRESS_ALLOW: {item!r} is not a CIDR such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


class EgressPolicy:
    """The rule: globally routable unicast addresses, plus the ranges the operator allows."""

    __slots__ = ("allow",)

    def __init__(self, allow: Iterable[IPNetwork] = ()) -> None:
        self.allow = tuple(allow)

    def refusal(self, address: str) -> str:
        """Why `address` (an IP literal) may not be called, or "" when it may."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # a zone id is not part of it
        if any(ip.version == net.version and ip in net for net in self.allow):
            return ""
        return _why_refused(ip)


def _why_refused(ip: IPAddress) -> str:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            why = _why_refused(embedded)
            if why:
                return f"an IPv6 form of {embedded}, which is {why}"
            if ip.ipv4_mapped is not None:
                return ""  # ::ffff:a.b.c.d is a.b.c.d
    for attribute, why in _CLASSES:
        if getattr(ip, attribute):
            return why
    if not ip.is_global or any(ip.version == n.version and ip in n for n in _SPECIAL):
        return "a special-purpose address (not globally routable)"
    return ""


# The order says which reason is named: metadata addresses are link-local, and so on.
_CLASSES = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address (cloud metadata services live there)"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _COMPAT and int(ip) > 1):  # ::, ::1 are themselves
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
