"""Which webhook targets may be sent to: only http(s) URLs whose host resolves only to globally routable addresses.

A partner could otherwise point an endpoint at the service's own network (a database, a cloud metadata service) and
read the answers in the attempts log. So a target is checked when it is created and again at every connection:
the connector resolves names through `CheckingResolver`, which refuses the whole answer if any address in it is not
global, and connects to the addresses it checked (no second lookup that a rebinding DNS server could answer
differently). Literal addresses skip resolvers in aiohttp, so `check_url` checks those before every request.

Every disguise of a private address ends up as an address here: `127.1` and `2130706433` resolve to 127.0.0.1,
`[::ffff:127.0.0.1]` carries its IPv4 address inside, as do NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
MAX_URL_LENGTH = 2000


class TargetRefused(ValueError):
    """A webhook URL that may not be sent to, and why (shown to the partner)."""


@dataclass(frozen=True)
class Target:
    url: URL
    host: str
    port: int
    literal: IPAddress | None  # the address, when the URL names one rather than a host name


def parse_url(raw: str) -> Target:
    """Check a URL's form: http or https, a host, no user name or password, a valid port."""
    if len(raw) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        url = URL(raw)
        port = url.port
    except ValueError as e:
        raise TargetRefused(f"not a valid URL: {e}") from e
    if url.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs can receive webhooks")
    if url.user is not None or url.password is not None or "@" in (url.raw_authority or ""):
        raise TargetRefused("a user name or password in the URL is not allowed; authenticate by the signature")
    host = url.raw_host
    if not host or port is None:
        raise TargetRefused("the URL has no host")
    return Target(url, host, port, _literal(host))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def refusal(address: IPAddress) -> str | None:
    """Why an address is not a fit target (None when it is globally routable)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner)
            return f"{address} wraps {why}" if why else None
        if address in NAT64_LOCAL_USE:
            return f"{address} is a local-use NAT64 address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_link_local:
        return f"{address} is a link-local address (cloud metadata services live here)"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_reserved or not address.is_global:
        return f"{address} is not a globally routable address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        server, client = address.teredo
        return client if refusal(server) is None else server
    return None


def check_url(raw: str, *, allow_private: bool) -> Target:
    """A URL's form, and its address when it names one; a host name is checked when it is resolved."""
    target = parse_url(raw)
    if target.literal is not None and not allow_private:
        why = refusal(target.literal)
        if why:
            raise TargetRefused(f"{why}; webhooks go only to public addresses")
    return target


def check_addresses(host: str, addresses: Sequence[str]) -> None:
    """Refuse a resolved host unless every address it has is global: an attacker's DNS can put a private address
    beside a public one, and the connector may try either."""
    if not addresses:
        raise TargetRefused(f"{host} has no address")
    for raw in addresses:
        why = refusal(ipaddress.ip_address(raw.split("%")[0]))
        if why:
            raise TargetRefused(f"{host} resolves to {why}; webhooks go only to public addresses")


class CheckingResolver(AbstractResolver):
    """Resolves names with `base` and refuses answers that include any address not globally routable.

    The connector connects to the addresses this returns, so what was checked is what is used.
    """

    def __init__(self, base: AbstractResolver | None = None, *, allow_private: bool = False) -> None:
        self._base = base or DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            answers = await self._base.resolve(host, port, family)
        except OSError as e:
            raise TargetRefused(f"{host} does not resolve: {e}") from e
        if not self._allow_private:
            check_addresses(host, [a["host"] for a in answers])
        return answers

    async def close(self) -> None:
        await self._base.close()


async def vet_url(raw: str, resolver: AbstractResolver, *, allow_private: bool) -> Target:
    """Check a URL as a partner sets it: its form, and every address its host resolves to now."""
    target = check_url(raw, allow_private=allow_private)
    if target.literal is None:
        checking = CheckingResolver(resolver, allow_private=allow_private)
        await checking.resolve(target.host, target.port, socket.AF_UNSPEC)
    return target
