"""Customer traffic through the real edges, open loop at a fixed rate: Twilio-signed SMS webhooks, and chat
visitors on their sockets. Each channel is one `Channel` entry of the mix; voice and mail join as they land."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol
from urllib.parse import urlencode

from bench.http import HttpClient
from bench.websocket import WebSocketClient, WebSocketError


@dataclass
class TrafficFigures:
    sent: int = 0
    # When the last contact left, against when it was due: a generator that falls behind offers less than asked.
    sending_s: float = 0.0
    accepted: list[str] = field(default_factory=list)  # provider ids the service acknowledged
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0  # sent, neither answered nor failed yet
    _none_in_flight: asyncio.Event = field(default_factory=asyncio.Event)

    def leaving(self) -> None:
        """A contact is sent."""
        self.sent += 1
        self.in_flight += 1
        self._none_in_flight.clear()

    def answered(self) -> None:
        """A contact sent was answered, or failed."""
        self.in_flight -= 1
        if not self.in_flight:
            self._none_in_flight.set()

    async def every_answer(self) -> None:
        if self.in_flight:
            await self._none_in_flight.wait()


def customer_number(n: int) -> str:
    """The phone number of customer `n` (of `--customers`)."""
    return f"+1415{n:07d}"


# Twilio waits this long for a webhook's answer, then gives up on it (and retries later with the same
# MessageSid): a contact not answered by then is a failure of the service, not a late arrival.
PROVIDER_TIMEOUT_S = 15.0
TICK_S = 0.001


def twilio_signature(auth_token: str, url: str, fields: dict[str, str]) -> str:
    """`X-Twilio-Signature` as Twilio computes it for a form whose fields each have one value: HMAC-SHA1 of
    the URL followed by every field's name and value, sorted by name, in base64. (Held to the `twilio`
    library's `RequestValidator` by the bench's tests; one call of the C one-shot HMAC here costs a fraction
    of the validator's, which the load generator would take from the service's cores: docs/performance.md,
    "Figures behind choices in the code".)"""
    signed = url + "".join(name + fields[name] for name in sorted(fields))
    return base64.b64encode(hmac.digest(auth_token.encode(), signed.encode(), "sha1")).decode()


class SmsTraffic:
    """Inbound SMS as Twilio posts them: signed form, many fields, `MessageSid` the idempotency key."""

    PATH = "/channels/twilio/sms"
    # What every message of the run has in common; MessageSid, SmsSid and From are each message's own.
    COMMON_FIELDS: ClassVar[dict[str, str]] = {
        "AccountSid": "AC" + "0" * 32,
        "To": "+15005550006",
        "Body": "Hello, is my order on its way?",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }

    def __init__(self, http: HttpClient, auth_token: str, customers: int) -> None:
        self._http = http
        self._url = f"http://{http.host}:{http.port}{self.PATH}"
        self._auth_token = auth_token
        self._customers = customers
        self._common_body = urlencode(self.COMMON_FIELDS)

    def message(self) -> tuple[str, bytes, dict[str, str]]:
        """One new message: its MessageSid, the form as posted, its headers (the signature among them)."""
        sid = "SM" + os.urandom(16).hex()
        own = {"MessageSid": sid, "SmsSid": sid, "From": customer_number(random.randrange(self._customers))}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(self._auth_token, self._url, self.COMMON_FIELDS | own),
        }
        return sid, f"{urlencode(own)}&{self._common_body}".encode(), headers

    def send_one(self, figures: TrafficFigures) -> None:
        sid, body, headers = self.message()
        figures.leaving()

        def answered(outcome: int | Exception) -> None:
            figures.answered()
            if isinstance(outcome, Exception):
                figures.failures[type(outcome).__name__] += 1
                return
            figures.statuses[outcome] += 1
            if outcome == 200:
                figures.accepted.append(sid)

        self._http.post(self.PATH, body, headers, answered)

    def close(self) -> None:
        pass  # the webhook client is the bench's own, closed with it


class _ChatVisitor:
    """One customer's chat socket, kept open for the run: each message is acknowledged (`ack`) once the service
    stored it and the bus confirmed it — the chat's "200"."""

    def __init__(self) -> None:
        self.socket: WebSocketClient | None = None
        self.visitor_id = ""
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting: dict[str, TrafficFigures] = {}

    def on_text(self, text: str) -> None:
        frame = json.loads(text)
        if frame["type"] == "welcome":
            self.visitor_id = frame["visitor_id"]
            if not self.welcomed.done():
                self.welcomed.set_result(None)
        elif frame["type"] == "ack" and (figures := self.waiting.pop(frame["id"], None)) is not None:
            figures.statuses[200] += 1
            figures.accepted.append(f"chat:{self.visitor_id}:{frame['id']}")
            figures.answered()
        elif frame["type"] == "error" and (figures := self.waiting.pop(frame["error"].get("id") or "", None)):
            figures.failures[f"chat {frame['error']['code']}"] += 1
            figures.answered()

    def lost(self) -> None:
        for figures in self.waiting.values():
            figures.failures["chat socket closed"] += 1
            figures.answered()
        self.waiting.clear()


class ChatTraffic:
    """Chat visitors as the widget is one: a socket per customer (`/chat/ws`, opened at its first message and
    kept), a message frame with the visitor's own id for it — the idempotency key."""

    PATH = "/chat/ws"

    def __init__(self, http: HttpClient, auth_token: str, customers: int) -> None:
        self._host, self._port = http.host, http.port
        self._customers = customers
        self._visitors: dict[int, asyncio.Task[_ChatVisitor]] = {}
        self._saying: set[asyncio.Task[None]] = set()

    def send_one(self, figures: TrafficFigures) -> None:
        figures.leaving()
        task = asyncio.get_running_loop().create_task(self._say(random.randrange(self._customers), figures))
        self._saying.add(task)
        task.add_done_callback(self._saying.discard)

    async def _say(self, customer: int, figures: TrafficFigures) -> None:
        opening = self._visitors.get(customer)
        if opening is None:
            opening = self._visitors[customer] = asyncio.get_running_loop().create_task(self._connect())
        try:
            visitor = await opening
        except (OSError, WebSocketError, TimeoutError) as exc:
            del self._visitors[customer]
            figures.failures[type(exc).__name__] += 1
            figures.answered()
            return
        message_id = os.urandom(16).hex()
        visitor.waiting[message_id] = figures
        assert visitor.socket is not None
        visitor.socket.send_text(json.dumps({"type": "message", "id": message_id, "text": "Is my order on its way?"}))

    def close(self) -> None:
        for opening in self._visitors.values():
            if opening.done() and not opening.exception() and (socket := opening.result().socket) is not None:
                socket.close()
            else:
                opening.cancel()

    async def _connect(self) -> _ChatVisitor:
        visitor = _ChatVisitor()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(PROVIDER_TIMEOUT_S):
            _, visitor.socket = await loop.create_connection(
                lambda: WebSocketClient(f"{self._host}:{self._port}", self.PATH, visitor.on_text),
                self._host,
                self._port,
            )
            await visitor.socket.opened
            await visitor.welcomed
        visitor.socket.closed.add_done_callback(lambda _: visitor.lost())
        return visitor


class Traffic(Protocol):
    """One channel's customers: sends one contact through the service's real edge; its answer, when it comes,
    is recorded in the figures (`in_flight` counts the contacts still unanswered)."""

    def send_one(self, figures: TrafficFigures) -> None: ...

    def close(self) -> None:
        """The run is over: close what the customers hold open (chat sockets), before the service stops."""


# The channels a mix may name; voice webhooks and SMTP mail join here as they land.
CHANNELS: dict[str, Callable[[HttpClient, str, int], Traffic]] = {"sms": SmsTraffic, "chat": ChatTraffic}


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
    contact on a channel drawn by the mix's shares; then wait for every answer (or its provider's timeout)."""
    sources, weights = zip(*mix, strict=True)
    figures = TrafficFigures()
    started = time.perf_counter()
    total = int(rate * duration)
    sent = 0
    while sent < total:
        # Every contact due by now leaves; then a sleep until the next one is due (at least a tick, so that at
        # a high rate the generator wakes once for a few contacts, not once for each).
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        for _ in range(due - sent):
            source = sources[0] if len(sources) == 1 else random.choices(sources, weights)[0]
            source.send_one(figures)
        sent = due
        if sent < total:
            await asyncio.sleep(max(TICK_S, started + sent / rate - time.perf_counter()))
    figures.sending_s = time.perf_counter() - started
    await figures.every_answer()
    return figures
