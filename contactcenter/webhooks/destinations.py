"""The SSRF guard: a webhook never reaches loopback, private, link-local, multicast or reserved addresses
(the service's own Redis, a cloud's metadata endpoint) unless `CC_WEBHOOK_ALLOW_PRIVATE` is set.

Checked at registration (a 400 naming `url`) and at every delivery: a name may resolve elsewhere later (DNS
rebinding), so deliveries connect through `GuardedResolver`, and the address checked is the one connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from contactcenter.errors import Invalid

# A name that does not resolve within this is refused: registration answers a person waiting.
RESOLVE_SECONDS = 5.0

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedDestination(Invalid):
    """A webhook's address is one deliveries may not reach, or cannot be resolved."""


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    # `is_global` is false for loopback, private, link-local, reserved, unspecified and shared (100.64/10)
    # addresses; multicast has global ranges of its own, and nobody answers a POST there.
    return address.is_global and not address.is_multicast


class GuardedResolver(AbstractResolver):
    """Resolves as the system does, then refuses (`RefusedDestination`) a name with any address that is not
    public — unless private addresses are allowed."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._system = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                found = await self._system.resolve(host, port, family)
        except (OSError, TimeoutError) as exc:
            raise RefusedDestination("the URL's host cannot be resolved", field="url") from exc
        for result in found:
            self.check(ipaddress.ip_address(result["host"]))
        return found

    def check(self, address: IpAddress) -> None:
        if not self._allow_private and not is_public(address):
            raise RefusedDestination(
                "the URL's host is a loopback, private, link-local, multicast or reserved address, which "
                "webhooks may not reach (CC_WEBHOOK_ALLOW_PRIVATE allows them)",
                field="url",
            )

    async def check_url(self, url: str) -> None:
        """Refuse a URL deliveries may not reach (at registration): its address, or what its name resolves to."""
        if not self.check_literal(url):
            await self.resolve(urlsplit(url).hostname or "", 0, socket.AF_UNSPEC)

    def check_literal(self, url: str) -> bool:
        """Check the address written in a URL (aiohttp connects to it without asking a resolver); False when
        the URL names a host instead."""
        try:
            address = ipaddress.ip_address(urlsplit(url).hostname or "")
        except ValueError:
            return False
        self.check(address)
        return True

    async def close(self) -> None:
        await self._system.close()
