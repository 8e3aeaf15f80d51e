"""Customer traffic through the real edges, open loop at a fixed rate: today Twilio-signed SMS webhooks.
Each channel is one `Channel` entry of the mix; voice, mail and chat join as they land."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

from multidict import MultiDict
from twilio.request_validator import RequestValidator

from bench.http import HttpClient, HttpError


@dataclass
class TrafficFigures:
    sent: int = 0
    # When the last contact left, against when it was due: a generator that falls behind offers less than asked.
    sending_s: float = 0.0
    accepted: list[str] = field(default_factory=list)  # provider ids the service acknowledged
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


def customer_number(n: int) -> str:
    """The phone number of customer `n` (of `--customers`)."""
    return f"+1415{n:07d}"


# Twilio waits this long for a webhook's answer, then gives up on it (and retries later with the same
# MessageSid): a contact not answered by then is a failure of the service, not a late arrival.
PROVIDER_TIMEOUT_S = 15.0


class SmsTraffic:
    """Inbound SMS as Twilio posts them: signed form, many fields, `MessageSid` the idempotency key."""

    PATH = "/channels/twilio/sms"

    def __init__(self, http: HttpClient, auth_token: str, customers: int) -> None:
        self._http = http
        self._url = f"http://{http.host}:{http.port}{self.PATH}"
        self._validator = RequestValidator(auth_token)
        self._customers = customers

    async def send_one(self, figures: TrafficFigures) -> None:
        sid = "SM" + uuid.uuid4().hex
        # A MultiDict, as a web framework hands the form over: the validator reads it with `getall`, where a
        # plain dict would cost it two exceptions a field (a tenth of the load generator's CPU).
        form = MultiDict(
            {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": "AC" + "0" * 32,
                "From": customer_number(random.randrange(self._customers)),
                "To": "+15005550006",
                "Body": "Hello, is my order on its way?",
                "NumMedia": "0",
                "NumSegments": "1",
                "SmsStatus": "received",
                "ApiVersion": "2010-04-01",
            }
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self._validator.compute_signature(self._url, form),
        }
        figures.sent += 1
        try:
            async with asyncio.timeout(PROVIDER_TIMEOUT_S):
                status = await self._http.post(self.PATH, urlencode(form).encode(), headers)
        except (HttpError, OSError, TimeoutError) as exc:
            figures.failures[type(exc).__name__] += 1
            return
        figures.statuses[status] += 1
        if status == 200:
            figures.accepted.append(sid)


class Traffic(Protocol):
    """One channel's customers: sends one contact through the service's real edge and records the answer."""

    async def send_one(self, figures: TrafficFigures) -> None: ...


# The channels a mix may name; voice webhooks, SMTP mail and chat sockets join here as they land.
CHANNELS: dict[str, type[SmsTraffic]] = {"sms": SmsTraffic}


def parse_mix(text: str) -> dict[str, float]:
    """`sms=0.4,voice=0.6` -> shares that add up to 1, over channels that exist."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        if name.strip() not in CHANNELS:
            raise ValueError(f"no traffic for channel {name.strip()!r} yet (have: {', '.join(CHANNELS)})")
        shares[name.strip()] = float(share or 1)
    total = sum(shares.values())
    return {name: share / total for name, share in shares.items()}


async def drive(mix: Sequence[tuple[Traffic, float]], *, rate: float, duration: float) -> TrafficFigures:
    """Send at `rate` per second for `duration` seconds, whatever the answers' speed (open loop), each
    contact on a channel drawn by the mix's shares."""
    sources, weights = zip(*mix, strict=True)
    figures = TrafficFigures()
    in_flight: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    total = int(rate * duration)
    for n in range(total):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        source = random.choices(sources, weights)[0]
        task = asyncio.create_task(source.send_one(figures))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    figures.sending_s = time.perf_counter() - started
    if in_flight:
        await asyncio.gather(*in_flight)
    return figures
