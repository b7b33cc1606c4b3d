"""The SSRF guard of outbound webhook URLs.

A URL is refused when its host is, or resolves (DNS) to, an address that is not publicly
routable: private, loopback, link-local, multicast, unspecified, reserved or shared (CGNAT).
`SIGNOFF_WEBHOOK_ALLOW_HOSTS` lifts the refusal: a host listed there (a name or an address,
compared with the URL's host literally) is allowed as is, whatever it resolves to; a CIDR range
(with a `/`, e.g. `10.0.0.0/8` or `127.0.0.1/32`) allows the addresses in it, whichever name
leads there. So `127.0.0.1` allows `http://127.0.0.1:8080/` but not `http://localhost:8080/`.
Checked when a webhook is created or updated and again before every delivery attempt, since
DNS can change. Deliveries never follow redirects (a 3xx is a failed attempt), so a redirect
cannot lead anywhere unchecked. (A DNS answer changing between the check and the connection
remains possible; the allow-list is the boundary, not a network policy.)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeUrlError(ValueError):
    """The URL is malformed or leads to an address webhooks may not reach."""


def _networks(allow: Iterable[str]) -> tuple[set[str], list[IpNetwork]]:
    hosts: set[str] = set()
    networks: list[IpNetwork] = []
    for item in allow:
        item = item.strip()
        if not item:
            continue
        if "/" in item:
            networks.append(ipaddress.ip_network(item, strict=False))
        else:
            hosts.add(item.lower().strip("[]").rstrip("."))
    return hosts, networks


def _restricted(address: IpAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for name in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    if not address.is_global:
        return "non-public"
    return None


def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise UnsafeUrlError(f"the webhook host {host!r} does not resolve ({err})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_url(url: str, allow: Iterable[str] = ()) -> None:
    """Raise UnsafeUrlError unless `url` is an http(s) URL every address of which may be
    reached (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrlError(f"the webhook URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise UnsafeUrlError("the webhook URL must not carry credentials; use `authorization`")
    host = parts.hostname.lower().rstrip(".")
    allowed_hosts, allowed_networks = _networks(allow)
    if host in allowed_hosts:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrlError(f"the webhook URL {url!r} has an invalid port") from None
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = resolve(host, port)
    for address in addresses:
        reason = _restricted(address)
        if reason is None or any(address in network for network in allowed_networks):
            continue
        via = "" if str(address) == host else f" (it resolves to {address})"
        raise UnsafeUrlError(
            f"the webhook URL {url!r} leads to a {reason} address{via}; outbound webhooks may "
            "only reach public addresses unless SIGNOFF_WEBHOOK_ALLOW_HOSTS lists the host or "
            "its range"
        )
