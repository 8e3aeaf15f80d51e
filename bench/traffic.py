"""Customer traffic through the real edges, open loop at a fixed rate: today Twilio-signed SMS webhooks.
Each channel is one `Channel` entry of the mix; voice, mail and chat join as they land."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from twilio.request_validator import RequestValidator


@dataclass
class TrafficFigures:
    sent: int = 0
    accepted: list[str] = field(default_factory=list)  # provider ids the service acknowledged
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


class SmsTraffic:
    """Inbound SMS as Twilio posts them: signed form, many fields, `MessageSid` the idempotency key."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, auth_token: str, customers: int) -> None:
        self._http = http
        self._url = f"{base_url}/channels/twilio/sms"
        self._validator = RequestValidator(auth_token)
        self._customers = customers

    async def send_one(self, figures: TrafficFigures) -> None:
        sid = "SM" + uuid.uuid4().hex
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": "AC" + "0" * 32,
            "From": f"+1415{random.randrange(self._customers):07d}",
            "To": "+15005550006",
            "Body": "Hello, is my order on its way?",
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        headers = {"X-Twilio-Signature": self._validator.compute_signature(self._url, form)}
        figures.sent += 1
        try:
            async with self._http.post(self._url, data=form, headers=headers) as response:
                await response.read()
                figures.statuses[response.status] += 1
                if response.status == 200:
                    figures.accepted.append(sid)
        except (aiohttp.ClientError, TimeoutError) as exc:
            figures.failures[type(exc).__name__] += 1


async def drive(traffic: SmsTraffic, *, rate: float, duration: float) -> TrafficFigures:
    """Send at `rate` per second for `duration` seconds, whatever the answers' speed (open loop)."""
    figures = TrafficFigures()
    in_flight: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    total = int(rate * duration)
    for n in range(total):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(traffic.send_one(figures))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.gather(*in_flight)
    return figures
