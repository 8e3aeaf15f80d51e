"""One delivery on the wire: a POST of the CloudEvent as the bus carried it (structured JSON), signed, with a
short timeout, never following a redirect (it could lead anywhere the guard refuses)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import aiohttp

from contactcenter.errors import ContactCenterError
from contactcenter.webhooks.backoff import parse_retry_after
from contactcenter.webhooks.destinations import GuardedResolver
from contactcenter.webhooks.registry import Destination
from contactcenter.webhooks.signing import signature

log = logging.getLogger(__name__)

CLOUDEVENTS_JSON = "application/cloudevents+json"


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no answer (refused address, connection failure, timeout)
    retry_after: float | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def open_delivery_session(resolver: GuardedResolver) -> aiohttp.ClientSession:
    """Deliveries' own connections: resolved through the guard, without a bound on their number (each webhook
    has one delivery in flight at most, so a dead receiver holds one connection, never the others' turn)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver, limit=0), trust_env=False)


class DeliverySender:
    def __init__(self, http: aiohttp.ClientSession, resolver: GuardedResolver, *, timeout: float) -> None:
        self._http = http
        self._resolver = resolver
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, webhook_id: uuid.UUID, destination: Destination, body: bytes) -> Outcome:
        headers = {
            "Content-Type": CLOUDEVENTS_JSON,
            "X-CC-Signature": signature(destination.secret, body, int(time.time())),
            "User-Agent": "contactcenter-webhooks",
        }
        try:
            # aiohttp resolves names through the guard; an address written in the URL it does not resolve.
            self._resolver.check_literal(destination.url)
            async with self._http.post(
                destination.url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                return Outcome(response.status, parse_retry_after(response.headers.get("Retry-After")))
        except (aiohttp.ClientError, TimeoutError, ContactCenterError) as exc:
            # The webhook's id, never its URL: a URL may carry a receiver's token.
            log.info("webhook %s did not answer: %s", webhook_id, _why(exc))
            return Outcome(None)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ContactCenterError):
        return exc.message
    return type(exc).__name__
