"""Which URLs the gateway may call on a merchant's behalf (webhooks): a pure SSRF check.

A merchant gives us a URL and we will send it HTTP requests from inside our network,
so the URL must not reach our own machines: loopback, private (RFC 1918), link-local
(169.254.0.0/16 holds the cloud metadata service), shared/CGNAT (100.64.0.0/10),
unique-local (fc00::/7), multicast, reserved and unspecified addresses, and IPv6 forms
that carry an IPv4 address inside (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) are refused.

Two steps, both pure; the caller does the DNS lookup in between:

1. :func:`parse_target` checks the URL's form (absolute ``http``/``https``, ASCII, no
   credentials, no backslash or whitespace, a valid port) and returns its host.
2. :func:`check_public_target` refuses a literal IP that is not public, and a host name
   unless EVERY address it resolved to is public (one private record is enough to
   refuse: the connection could use it).

Literal IPv4 hosts are read the way browsers and C resolvers read them (WHATWG URL:
a host whose last label is a number is an IPv4 address; ``2130706433``, ``0x7f000001``,
``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1). Any spelling other than four dotted
decimal numbers is refused outright: parsers disagree about them, which is what SSRF
bypasses exploit, and no public receiver needs them.

``allow_loopback=True`` admits loopback targets (``localhost``, 127.0.0.0/8, ``::1``)
and nothing else; it exists for local development and tests, and every production
caller passes ``False``. This check runs at registration; the delivery client must
check the address it actually connects to again (DNS can change in between).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from domain.errors import RequestError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
MAX_URL_CHARS: Final = 2048
MAX_HOST_CHARS: Final = 253
LOOPBACK_NAMES: Final = ("localhost",)
"""Names that always mean this machine (RFC 6761), refused before any lookup."""

_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_UNIQUE_LOCAL: Final = ipaddress.IPv6Network("fc00::/7")
_SITE_LOCAL: Final = ipaddress.IPv6Network("fec0::/10")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_HOST_LABEL: Final = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0x[0-9a-f]*")


class TargetError(RequestError):
    """A webhook URL is malformed (``url_invalid``) or its destination is refused
    (``url_not_allowed``); HTTP 400 with ``param`` naming the field."""


def _invalid(message: str, param: str) -> TargetError:
    return TargetError("url_invalid", message, param)


def _not_allowed(message: str, param: str) -> TargetError:
    return TargetError("url_not_allowed", message, param)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points: scheme, lower-case host (no brackets), port, and the
    address when the host is a literal IP (``None`` for a name to resolve)."""

    scheme: str
    host: str
    port: int
    address: IPAddress | None


def _ipv4_number(label: str) -> int | None:
    """One part of a WHATWG IPv4 host: ``0x`` hex, ``0``-prefixed octal, or decimal."""
    if label.startswith("0x"):
        digits, base = label[2:], 16
        if not digits:
            return 0
    elif len(label) > 1 and label.startswith("0"):
        digits, base = label[1:], 8
    else:
        digits, base = label, 10
    try:
        return int(digits, base)
    except ValueError:
        return None


def parse_ipv4_host(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host means in any WHATWG spelling, or None if it is not valid.

    ``127.0.0.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` all give
    127.0.0.1: the last part fills the remaining bytes, as ``inet_aton`` does.
    """
    labels = host.split(".")
    if labels and labels[-1] == "":
        labels.pop()
    if not 1 <= len(labels) <= 4:
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    parts = [n for n in numbers if n is not None]
    if any(n > 255 for n in parts[:-1]) or parts[-1] >= 256 ** (5 - len(parts)):
        return None
    value = parts[-1]
    for index, part in enumerate(parts[:-1]):
        value += part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _is_numeric_host(host: str) -> bool:
    """WHATWG "ends in a number": such a host is an IPv4 address or invalid, never a name."""
    labels = host.rstrip(".").split(".")
    return bool(labels) and _NUMERIC_LABEL.fullmatch(labels[-1]) is not None


def parse_target(url: object, param: str = "url") -> Target:
    """Check a URL's form and return where it points (no DNS; see module docstring)."""
    form = f"{param} must be an absolute http:// or https:// URL of at most {MAX_URL_CHARS} chars"
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS or not url.isascii():
        raise _invalid(form, param)
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in url):
        raise _invalid(f"{param} must not contain whitespace, control characters or '\\'", param)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid(form, param) from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES or not parts.netloc:
        raise _invalid(form, param)
    if "@" in parts.netloc:
        raise _invalid(f"{param} must not contain credentials (user:password@)", param)
    if port == 0:
        raise _invalid(f"{param} has an invalid port", param)
    host = (parts.hostname or "").lower()
    if not host:
        raise _invalid(form, param)
    if ":" in host:  # bracketed IPv6 literal (urlsplit strips the brackets)
        try:
            ipv6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise _invalid(f"{param} has an invalid IPv6 address", param) from None
        if ipv6.scope_id:
            raise _not_allowed(f"{param} must not name an IPv6 zone", param)
        return Target(scheme, host, port or DEFAULT_PORTS[scheme], ipv6)
    if _is_numeric_host(host):
        ipv4 = parse_ipv4_host(host)
        if ipv4 is None:
            raise _invalid(f"{param} has an invalid IPv4 address", param)
        if str(ipv4) != host:
            raise _not_allowed(
                f"{param} must write an IP address as four decimal numbers (a.b.c.d), "
                f"not {host!r} (which means {ipv4})",
                param,
            )
        return Target(scheme, host, port or DEFAULT_PORTS[scheme], ipv4)
    name = host.removesuffix(".")
    if len(name) > MAX_HOST_CHARS or not all(
        _HOST_LABEL.fullmatch(label) for label in name.split(".")
    ):
        raise _invalid(f"{param} has an invalid host name", param)
    return Target(scheme, name, port or DEFAULT_PORTS[scheme], None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal_reason(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the gateway must not connect to ``address`` (None: it is a public address)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address in _IPV4_COMPATIBLE and not address.is_loopback:
            return "an IPv4-compatible IPv6 address" if int(address) else "the unspecified address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = refusal_reason(embedded, allow_loopback=False)
            return None if inner is None else f"an IPv6 address embedding {inner}"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a shared (CGNAT) address"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "a unique-local address"
    if isinstance(address, ipaddress.IPv6Address) and address in _SITE_LOCAL:
        return "a site-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def _is_loopback_name(host: str) -> bool:
    return any(host == name or host.endswith("." + name) for name in LOOPBACK_NAMES)


def check_public_target(
    url: object,
    resolved_addresses: Iterable[str],
    *,
    allow_loopback: bool = False,
    param: str = "url",
) -> None:
    """Raise :class:`TargetError` unless ``url`` may be called from the gateway.

    ``resolved_addresses`` are the addresses the URL's host name resolved to (ignored
    for a literal IP). A name that resolved to nothing, or to any address that is not
    public, is refused (``url_not_allowed``); a malformed URL is ``url_invalid``.
    """
    target = parse_target(url, param)
    if target.address is not None:
        candidates: list[IPAddress] = [target.address]
    else:
        if _is_loopback_name(target.host) and not allow_loopback:
            raise _not_allowed(f"{param} must not point to this machine ({target.host})", param)
        candidates = []
        for raw in resolved_addresses:
            try:
                candidates.append(ipaddress.ip_address(raw.split("%", 1)[0]))
            except ValueError:
                raise _not_allowed(
                    f"{param}'s host resolved to an unusable address", param
                ) from None
        if not candidates:
            raise _not_allowed(f"{param}'s host {target.host} does not resolve", param)
    for address in candidates:
        reason = refusal_reason(address, allow_loopback=allow_loopback)
        if reason is not None:
            where = "is" if target.address is not None else f"resolves to {address}:"
            raise _not_allowed(
                f"{param} must point to a public internet address; {target.host} {where} {reason}",
                param,
            )
