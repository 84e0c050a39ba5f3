"""Client addresses and the network prefixes they are grouped by (/24 for IPv4, /48 for IPv6).

One machine rarely holds one address: a flood from a rented block rotates through its
neighbours, so limits count per prefix as well as per address.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.types import Scope


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


@lru_cache(maxsize=65_536)
def address_prefix(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    length = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{length}", strict=False))


@lru_cache(maxsize=65_536)
def history_key(address: str) -> str:
    """Whose history an address's requests make: the address itself for IPv4, its /64 for IPv6.

    Not the wider prefixes limits count by: a good history is a reward, and one well-behaved
    address must not lend it to the neighbours a flood rotates through (nor one flooding
    neighbour take it from everyone else in a /24). An IPv6 household's addresses change
    within its /64, the smallest block it is given, so that is where its history stays.
    """
    if ":" not in address:
        return address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class ForwardedFor:
    """The real client behind trusted reverse proxies, from ``X-Forwarded-For``.

    Only hops added by a trusted proxy are believed: walking the header from its right end,
    the first address that is not a trusted proxy is the client. Anything further left was
    written by the client itself and could be anything.
    """

    def __init__(self, trusted: str) -> None:
        self.networks = [
            ipaddress.ip_network(cidr.strip(), strict=False)
            for cidr in trusted.split(",")
            if cidr.strip()
        ]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def apply(self, scope: Scope) -> None:
        client = scope.get("client")
        if not client or not self.trusts(client[0]):
            return
        forwarded = b""
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded = forwarded + b"," + value if forwarded else value
        if not forwarded:
            return
        hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",")]
        for hop in reversed(hops):
            if not hop:
                continue
            if not self.trusts(hop):
                try:
                    ipaddress.ip_address(hop)
                except ValueError:
                    return  # garbage where an address should be: keep the proxy's own
                scope["client"] = (hop, 0)
                return
        scope["client"] = (hops[0] or client[0], 0)
