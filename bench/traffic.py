"""Customer traffic through the real edges, open loop at a fixed rate: Twilio-signed SMS webhooks, calls (the
call's webhook, then the menu's answer), mail over real SMTP and chat visitors on their sockets. Each channel is
one entry of the mix (`CHANNELS`)."""

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

import aiosmtplib

from bench.http import Answered, HttpClient
from bench.websocket import WebSocketClient, WebSocketError


@dataclass
class TrafficFigures:
    sent: int = 0
    # When the last contact left, against when it was due: a generator that falls behind offers less than asked.
    sending_s: float = 0.0
    accepted: list[str] = field(default_factory=list)  # provider ids the service acknowledged
    accepted_by_channel: Counter[str] = field(default_factory=Counter)
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


# The account and the number the bench's calls and messages are for; the number's menu chooses the bench's
# queue with the key 1 (`python -m bench` sets it up).
ACCOUNT_SID = "AC" + "0" * 32
NUMBER = "+15005550006"
BENCH_MENU = {
    "greeting": "Welcome.",
    "prompt": "For the bench, press 1.",
    "options": [{"digit": "1", "words": ["bench"], "queue": "bench"}],
}


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
        "AccountSid": ACCOUNT_SID,
        "To": NUMBER,
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
                figures.accepted_by_channel["sms"] += 1

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


MAIL_DOMAIN = "bench.example"
# SMTP connections the generator keeps open to the intake, each carrying one message at a time (as a sending
# server's queue runner does): more messages than connections wait for one.
MAIL_CONNECTIONS = 16


class MailTraffic:
    """Inbound mail as another server sends it: one SMTP transaction per message over kept-open connections
    (`aiosmtplib`), the Message-ID the idempotency key. A 250 is an acknowledged contact."""

    def __init__(self, smtp_port: int, customers: int, connections: int = MAIL_CONNECTIONS) -> None:
        self._port = smtp_port
        self._customers = customers
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(connections)
        self._sending: set[asyncio.Task[None]] = set()

    def message(self) -> tuple[str, str, bytes]:
        """One new mail: its Message-ID (as the service keeps it), its sender, the message as sent."""
        message_id = f"{os.urandom(16).hex()}@customer.example"
        sender = f"customer{random.randrange(self._customers)}@customer.example"
        raw = (
            f"From: Customer <{sender}>\r\nTo: support@{MAIL_DOMAIN}\r\nSubject: My order\r\n"
            f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "\r\nHello, is my order on its way?\r\n"
        ).encode()
        return message_id, sender, raw

    def send_one(self, figures: TrafficFigures) -> None:
        figures.leaving()
        task = asyncio.get_running_loop().create_task(self._send(figures))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, figures: TrafficFigures) -> None:
        message_id, sender, raw = self.message()
        try:
            async with self._slots:
                client = self._idle.pop() if self._idle else await self._connect()
                try:
                    await client.sendmail(sender, [f"support@{MAIL_DOMAIN}"], raw)
                except aiosmtplib.SMTPResponseException as exc:
                    figures.statuses[exc.code] += 1
                    await _quietly_closed(client)
                    return
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    await _quietly_closed(client)
                    raise
                self._idle.append(client)
            figures.statuses[250] += 1
            figures.accepted.append(message_id)
            figures.accepted_by_channel["email"] += 1
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            figures.failures[type(exc).__name__] += 1
        finally:
            figures.answered()

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self._port, timeout=PROVIDER_TIMEOUT_S, start_tls=False)
        await client.connect()
        return client

    def close(self) -> None:
        """The kept-open SMTP connections go (a sending server's queue runner hangs up when it is done)."""
        while self._idle:
            self._idle.pop().close()


async def _quietly_closed(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


class VoiceTraffic:
    """Inbound calls: the call's webhook, then the menu's answer; `CallSid` is the idempotency key. The contact
    counts as acknowledged when the menu's answer (which publishes it) is."""

    PATH = "/channels/twilio/voice"
    COMMON_FIELDS: ClassVar[dict[str, str]] = {
        "AccountSid": ACCOUNT_SID,
        "To": NUMBER,
        "Called": NUMBER,
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        "FromCountry": "US",
        "ToCountry": "US",
    }

    def __init__(self, http: HttpClient, auth_token: str, customers: int) -> None:
        self._http = http
        self._base = f"http://{http.host}:{http.port}"
        self._auth_token = auth_token
        self._customers = customers

    def _post(self, path: str, fields: dict[str, str], answered: Answered) -> None:
        form = self.COMMON_FIELDS | fields
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(self._auth_token, self._base + path, form),
        }
        self._http.post(path, urlencode(form).encode(), headers, answered)

    def send_one(self, figures: TrafficFigures) -> None:
        sid = "CA" + os.urandom(16).hex()
        caller = customer_number(random.randrange(self._customers))
        own = {"CallSid": sid, "From": caller, "Caller": caller}
        figures.leaving()

        def failed(outcome: int | Exception) -> bool:
            if isinstance(outcome, Exception):
                figures.failures[type(outcome).__name__] += 1
                return True
            figures.statuses[outcome] += 1
            return outcome != 200

        def menu_answered(outcome: int | Exception) -> None:
            figures.answered()
            if not failed(outcome):
                figures.accepted.append(sid)

        def call_answered(outcome: int | Exception) -> None:
            if failed(outcome):
                figures.answered()
                return
            self._post(f"{self.PATH}/menu", own | {"CallStatus": "in-progress", "Digits": "1"}, menu_answered)

        self._post(self.PATH, own | {"CallStatus": "ringing"}, call_answered)

    def close(self) -> None:
        pass  # the webhook client is the bench's own, closed with it


class Traffic(Protocol):
    """One channel's customers: sends one contact through the service's real edge; its answer, when it comes,
    is recorded in the figures (`in_flight` counts the contacts still unanswered)."""

    def send_one(self, figures: TrafficFigures) -> None: ...

    def close(self) -> None:
        """The run is over: close what the customers hold open (chat sockets), before the service stops."""


@dataclass(frozen=True)
class Edges:
    """Where the service under load takes contacts in: one API process's HTTP, and the SMTP intake."""

    http: HttpClient
    twilio_token: str
    customers: int
    smtp_port: int


# The channels a mix may name, each made from the edges.
CHANNELS: dict[str, Callable[[Edges], Traffic]] = {
    "sms": lambda edges: SmsTraffic(edges.http, edges.twilio_token, edges.customers),
    "voice": lambda edges: VoiceTraffic(edges.http, edges.twilio_token, edges.customers),
    "email": lambda edges: MailTraffic(edges.smtp_port, edges.customers),
    "chat": lambda edges: ChatTraffic(edges.http, edges.twilio_token, edges.customers),
}


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
