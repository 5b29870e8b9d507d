"""Which address a request comes from: the socket peer, or ``X-Forwarded-For`` when (and only
when) the peer is a proxy the operator trusts (``--forwarded-allow-ips``).

Free of any web framework: callers pass the ASGI scope's ``client`` host and the header values.
The server hands the application the real socket peer (``dicomite.server`` rewrites nothing);
this module applies the one trusted-proxy rule.

``X-Forwarded-For`` lists ``client, proxy1, proxy2``, each proxy appending the peer it saw
(MDN, X-Forwarded-For). Only entries appended by trusted proxies are believed, so the list is
read from the right: trusted proxies are skipped, and the first address not trusted is the
client. Everything to its left was written by the client itself and is ignored.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_ADDRESS_LENGTH = 64  # the sign-in log's ip_address column
MAX_HOPS = 32  # a longer X-Forwarded-For is not walked further (bounded work per request)


class InvalidForwarder(ValueError):
    """A ``--forwarded-allow-ips`` entry that is neither an address nor a CIDR network."""


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose ``X-Forwarded-For`` is believed; none by default."""

    networks: tuple[Network, ...] = ()

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)


@functools.cache
def trusted_proxies(setting: str) -> TrustedProxies:
    """``"10.0.0.1, 192.168.0.0/16, ::1"`` as ``TrustedProxies`` (parsed once per value)."""
    entries = [entry.strip() for entry in setting.split(",") if entry.strip()]
    return TrustedProxies(tuple(_network(entry) for entry in entries))


def _network(entry: str) -> Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise InvalidForwarder(
            f"'{entry[:80]}' is not an IP address or CIDR network, such as 10.0.0.1 or 10.0.0.0/8."
        ) from None


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: TrustedProxies) -> str:
    """The client's address: the peer, unless the peer is trusted and forwarded the request.

    ``forwarded_for`` holds the ``X-Forwarded-For`` field values in the order received. A peer
    that is not an IP address (a Unix socket, a test client) is returned as it is."""
    peer_ip = parse_address(peer)
    if not trusted.trusts(peer_ip):
        return _shown(peer_ip, peer)
    hops = _hops(forwarded_for)
    address = peer_ip
    for hop in reversed(hops[-MAX_HOPS:]):
        hop_ip = parse_address(hop)
        if hop_ip is None:  # garbage a trusted proxy passed on: its own peer is what we know
            break
        address = hop_ip
        if not trusted.trusts(hop_ip):
            break
    return _shown(address, peer)


def parse_address(text: str | None) -> Address | None:
    """An IP address (``[v6]`` brackets and IPv4-mapped IPv6 unwrapped), or None."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _hops(values: Iterable[str]) -> Sequence[str]:
    return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]


def _shown(address: Address | None, peer: str | None) -> str:
    return str(address) if address is not None else (peer or "unknown")[:MAX_ADDRESS_LENGTH]
