"""The SSRF guard of outbound webhook URLs.

A URL is refused when its host is, or resolves (DNS) to, an address that is not publicly
routable: private, loopback, link-local, multicast, unspecified, reserved or shared (CGNAT).
An IPv6 address that embeds an IPv4 address is judged by the embedded address too, whichever
way it is embedded: IPv4-mapped (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`),
IPv4-compatible (`::/96`), 6to4 (`2002::/16`), Teredo (`2001::/32`: its server and its XOR-ed
client address) and NAT64 (`64:ff9b::/96`); the local-use NAT64 prefix `64:ff9b:1::/48` is never
public. So `http://[2002:7f00:1::]/` (6to4 around 127.0.0.1) is refused like `http://127.0.0.1/`.

Only plain URLs are accepted, so that what is checked is what is connected to: no userinfo (not
even an empty one, `http://@host/`), no whitespace, control characters or backslashes, an IP
literal only in standard form (dotted-quad IPv4; IPv6 in brackets, without a zone; no IPvFuture
such as `[v1.fe]`), and no host that a resolver would read as a number in another form
(`2130706433`, `0x7f.1`, `017700000001`, `127.1`: every host whose last label is numeric must be
a dotted quad). Host names are ASCII (IDNs in their `xn--` form). The URL must also parse to
the same host and port with httpx, which sends the deliveries.

`SIGNOFF_WEBHOOK_ALLOW_HOSTS` lifts the refusal: a host listed there (a name or an address,
compared with the URL's host literally) is allowed as is, whatever it resolves to; a CIDR range
(with a `/`, e.g. `10.0.0.0/8` or `127.0.0.1/32`) allows the addresses in it (an address
embedding an IPv4 one is allowed when either is in the range), whichever name leads there. So
`127.0.0.1` allows `http://127.0.0.1:8080/` but not `http://localhost:8080/`.

Checked when a webhook is created or updated and again before every delivery attempt. DNS
rebinding: `check_url` resolves a name once and answers the `Destination` to connect to, the
URL with its host replaced by the checked address (the name goes in `Host` and, for https, in
TLS's server name, so certificates are still verified for the name). A delivery connecting to
it cannot be sent elsewhere by a DNS answer that changed after the check. Deliveries never
follow redirects (a 3xx is a failed attempt), so a redirect cannot lead anywhere unchecked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IpAddress]]

_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.]+)\](?::([0-9]*))?$")
_PLAIN_HOST = re.compile(r"^([^:\[\]]+)(?::([0-9]*))?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_DOTTED_QUAD = re.compile(r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.|$)){4}$")
_MAX_HOST = 253

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")


class UnsafeUrlError(ValueError):
    """The URL is malformed or leads to an address webhooks may not reach."""


@dataclass(frozen=True)
class Destination:
    """Where to send a checked URL: `url` (with the checked address in place of a name that
    had to be resolved), plus the `headers` and httpx `extensions` that keep the name."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


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


def embedded_ipv4(address: IpAddress) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of the embedding."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(("IPv4-mapped", address.ipv4_mapped))
    if address in _IPV4_TRANSLATED:
        found.append(("IPv4-translated", low32))
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: and ::1, which are IPv6's own
        found.append(("IPv4-compatible", low32))
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    if address in _NAT64 or address in _NAT64_LOCAL:
        found.append(("NAT64", low32))
    return found


def _restricted_itself(address: IpAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return "local-use NAT64"
    for name in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    if not address.is_global:
        return "non-public"
    return None


def restriction(address: IpAddress) -> str | None:
    """Why webhooks may not reach this address (None: they may), judging any IPv4 address it
    embeds too."""
    for form, inner in embedded_ipv4(address):
        reason = _restricted_itself(inner)
        if reason is not None:
            return f"{reason} (via {form} embedding {inner})"
    if isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None or address in _NAT64
    ):
        return None  # only a way of writing the IPv4 address, which alone decides
    return _restricted_itself(address)


def _allowed_by_network(address: IpAddress, networks: list[IpNetwork]) -> bool:
    candidates = [address, *(inner for _, inner in embedded_ipv4(address))]
    return any(candidate in network for candidate in candidates for network in networks)


def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise UnsafeUrlError(f"the webhook host {host!r} does not resolve ({err})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or _FORBIDDEN_CHARACTERS.search(url):
        raise UnsafeUrlError(
            "the webhook URL must not contain whitespace, control characters or backslashes"
        )
    try:
        parts = urlsplit(url)
    except ValueError as err:  # "Invalid IPv6 URL" for http://[::1 and the like
        raise UnsafeUrlError(f"the webhook URL {url!r} is malformed ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UnsafeUrlError(f"the webhook URL {url!r} is not an http(s) URL")
    if "@" in parts.netloc:
        raise UnsafeUrlError("the webhook URL must not carry credentials; use `authorization`")
    return parts


def _host_and_port(url: str, parts: SplitResult) -> tuple[str, IpAddress | None, int]:
    """The URL's host (lowercase, without brackets or a trailing dot), its address when it is
    an IP literal, and the port; UnsafeUrlError unless every part is in standard form."""
    netloc = parts.netloc
    literal: IpAddress | None = None
    bracketed = _BRACKETED.match(netloc)
    if netloc.startswith("["):
        if bracketed is None:
            raise UnsafeUrlError(
                f"the webhook URL {url!r} has a non-standard IP literal; write an IPv6 address "
                "in brackets, without a zone, such as http://[2001:db8::1]/"
            )
        host, port_text = bracketed.group(1).lower(), bracketed.group(2)
        try:
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeUrlError(f"the webhook URL {url!r} has an invalid IPv6 address") from None
        host = str(literal)
    else:
        plain = _PLAIN_HOST.match(netloc)
        if plain is None:
            raise UnsafeUrlError(f"the webhook URL {url!r} has an invalid host")
        host, port_text = plain.group(1).lower().rstrip("."), plain.group(2)
        labels = host.split(".")
        if len(host) > _MAX_HOST or not all(_LABEL.match(label) for label in labels):
            raise UnsafeUrlError(
                f"the webhook URL {url!r} has an invalid host name; use letters, digits and "
                "'-' (an internationalized name in its xn-- form)"
            )
        if _NUMERIC_LABEL.match(labels[-1]):
            if not _DOTTED_QUAD.match(host):
                raise UnsafeUrlError(
                    f"the webhook URL {url!r} has a numeric host that is not a dotted-quad "
                    "IPv4 address (decimal, octal, hex and shortened forms are refused)"
                )
            literal = ipaddress.IPv4Address(host)
    default = 443 if parts.scheme == "https" else 80
    if port_text is None or port_text == "":
        port = default
    elif len(port_text) > 5 or not 0 < int(port_text) <= 65535:
        raise UnsafeUrlError(f"the webhook URL {url!r} has an invalid port")
    else:
        port = int(port_text)
    _same_for_httpx(url, host, port, default)
    return host, literal, port


def _same_for_httpx(url: str, host: str, port: int, default: int) -> None:
    """The deliveries' HTTP client must read the URL the same way, or the check is moot."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        raise UnsafeUrlError(f"the webhook URL {url!r} is malformed ({err})") from None
    theirs = parsed.host.lower().rstrip(".")
    if ":" in theirs:
        theirs = str(ipaddress.IPv6Address(theirs))
    if theirs != host or (parsed.port or default) != port:
        raise UnsafeUrlError(f"the webhook URL {url!r} is ambiguous; write it plainly")


def check_url(url: str, allow: Iterable[str] = (), *, resolver: Resolver = resolve) -> Destination:
    """Raise UnsafeUrlError unless `url` is an http(s) URL every address of which may be
    reached (see the module docstring); answer where to connect."""
    parts = _split(url)
    host, literal, port = _host_and_port(url, parts)
    allowed_hosts, allowed_networks = _networks(allow)
    if host in allowed_hosts:
        return Destination(url)
    addresses = [literal] if literal is not None else resolver(host, port)
    if not addresses:
        raise UnsafeUrlError(f"the webhook host {host!r} does not resolve (no addresses)")
    for address in addresses:
        reason = restriction(address)
        if reason is None or _allowed_by_network(address, allowed_networks):
            continue
        via = "" if literal is not None else f" (it resolves to {address})"
        raise UnsafeUrlError(
            f"the webhook URL {url!r} leads to a {reason} address{via}; outbound webhooks may "
            "only reach public addresses unless SIGNOFF_WEBHOOK_ALLOW_HOSTS lists the host or "
            "its range"
        )
    if literal is not None:
        return Destination(url)
    return _pinned(parts, host, port, addresses[0])


def _pinned(parts: SplitResult, host: str, port: int, address: IpAddress) -> Destination:
    """The URL with the checked address as its host; the name in `Host` and the TLS SNI."""
    shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    default = 443 if parts.scheme == "https" else 80
    host_header = host if port == default else f"{host}:{port}"
    url = urlunsplit((parts.scheme, f"{shown}:{port}", parts.path, parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Destination(url, {"Host": host_header}, extensions)
