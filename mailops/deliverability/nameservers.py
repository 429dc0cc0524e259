"""Parse ``MAILOPS["DNS_NAMESERVERS"]`` / ``MAILOPS_DNS_NAMESERVERS`` (``ip[:port],…``).

Kept free of dnspython so that settings can validate the variable at start-up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

DNS_PORT = 53


def parse_nameservers(value: str | Sequence[str]) -> list[tuple[str, int]]:
    """``"127.0.0.1:5353,[::1]:53,192.0.2.1"`` (or a list of such) as ``[(ip, port), ...]``.

    Raises ``ValueError`` naming the bad item: only IP addresses are accepted
    (a host name would need a resolver to find the resolver).
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    servers = []
    for raw in items:
        if not isinstance(raw, str):
            raise ValueError(f"{raw!r} is not a string of the form ip[:port]")
        item = raw.strip()
        if item:
            servers.append(_parse_one(item))
    return servers


def _parse_one(item: str) -> tuple[str, int]:
    host, port_text = item, ""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{item!r} is not of the form ip, ip:port or [ipv6]:port")
        port_text = rest[1:]
    elif item.count(":") == 1:
        host, port_text = item.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{item!r}: {host!r} is not an IP address") from None
    port = DNS_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{item!r}: port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    return str(address), port
