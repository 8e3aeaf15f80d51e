"""`contactcenter simulate`: realistic traffic for the demo center, through the service's real edges — customers
writing in on every channel (SMS and calls as Twilio posts them, signed — a call answers the menu, and its end
comes as status callbacks; mail to the SMTP intake when CC_MAIL_DOMAINS is set; web chat visitors on the widget's
socket), and two of the demo's agents (Bob and Dan) answering on
the desktop socket — so cards pop and the wallboard's figures move. Ann and Carla are left for a person to sign
in as. Needs the service running, and for Twilio's channels the same CC_TWILIO_AUTH_TOKEN as the service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib
from twilio.request_validator import RequestValidator

from contactcenter.host.demo import CLIENTS, DEALER_PHONE, DemoPeople
from contactcenter.settings import Settings

log = logging.getLogger(__name__)

DRIVEN_AGENTS = ("Bob Sales", "Dan Service")
QUESTIONS = (
    "Is the red pickup still available?",
    "Can I book a test drive for Saturday?",
    "What are your opening hours on Sunday?",
    "My car makes a noise when braking, can you look at it?",
    "How much is an oil change?",
    "Do you offer financing for used cars?",
    "Is my car ready to pick up?",
)
REPLIES = ("Thanks for reaching out! Let me check.", "Yes, we can do that.", "I'll book it for you right away.")

VOICE = "/channels/twilio/voice"


@dataclass
class Traffic:
    """What every sender needs: the service, its settings, and the calls and chats still going on, which the
    end of the run finishes (a caller hangs up, a visitor leaves)."""

    http: aiohttp.ClientSession
    base_url: str
    settings: Settings
    chance: random.Random
    stopping: asyncio.Event
    going_on: set[asyncio.Task[None]] = field(default_factory=set)

    def later(self, what: Awaitable[None]) -> None:
        task = asyncio.ensure_future(what)
        self.going_on.add(task)
        task.add_done_callback(self.going_on.discard)

    async def pause(self, low: float, high: float) -> None:
        """A few seconds, or less when the run ends."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), self.chance.uniform(low, high))

    async def post_twilio(self, path: str, form: dict[str, str]) -> int:
        """A form as Twilio posts it: signed with the account's auth token over the public URL."""
        signed_url = (self.settings.public_url.rstrip("/") if self.settings.public_url else self.base_url) + path
        validator = RequestValidator(self.settings.twilio_auth_token.get_secret_value())
        headers = {"X-Twilio-Signature": validator.compute_signature(signed_url, form)}
        async with self.http.post(self.base_url + path, data=form, headers=headers) as response:
            await response.read()
            return response.status


Send = Callable[[Traffic, str, str, str], Awaitable[int]]


async def send_sms(traffic: Traffic, phone: str, _email: str, text: str) -> int:
    """A customer's SMS."""
    form = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": traffic.settings.twilio_account_sid or "AC" + "0" * 32,
        "From": phone,
        "To": DEALER_PHONE,
        "Body": text,
        "NumMedia": "0",
    }
    return await traffic.post_twilio("/channels/twilio/sms", form)


def _call_form(traffic: Traffic, call_sid: str, phone: str, status: str, **more: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": traffic.settings.twilio_account_sid or "AC" + "0" * 32,
        "From": phone,
        "To": DEALER_PHONE,
        "CallStatus": status,
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **more,
    }


async def send_call(traffic: Traffic, phone: str, _email: str, _text: str) -> int:
    """A customer's call: the call's webhook (the menu), the key it presses, and later the end of the call
    (status callbacks: the caller hangs up after a while, answered or not)."""
    sid = "CA" + uuid.uuid4().hex
    status = await traffic.post_twilio(VOICE, _call_form(traffic, sid, phone, "ringing"))
    if status >= 400:
        return status
    digit = traffic.chance.choice("12")
    status = await traffic.post_twilio(
        f"{VOICE}/menu?round=1", _call_form(traffic, sid, phone, "in-progress", Digits=digit)
    )
    traffic.later(_hang_up(traffic, sid, phone))
    return status


async def _hang_up(traffic: Traffic, sid: str, phone: str) -> None:
    started = asyncio.get_running_loop().time()
    await traffic.pause(20, 60)
    seconds = str(int(asyncio.get_running_loop().time() - started))
    await traffic.post_twilio(f"{VOICE}/status", _call_form(traffic, sid, phone, "completed", CallDuration=seconds))


async def send_mail(traffic: Traffic, _phone: str, email: str, text: str) -> int:
    """A customer's mail, handed to the service's SMTP intake as a mail server would (250 when taken)."""
    message = EmailMessage(policy=policy.default)
    message["From"] = email
    message["To"] = f"service@{traffic.settings.mail_domains[0]}"
    message["Subject"] = text[:40]
    message["Message-ID"] = make_msgid(domain="customer.example")
    message.set_content(text)
    host = urlsplit(traffic.base_url).hostname or "127.0.0.1"
    try:
        await aiosmtplib.send(message, hostname=host, port=traffic.settings.smtp_port, timeout=30)
    except aiosmtplib.SMTPException as exc:
        log.warning("the service's SMTP intake refused a simulated mail: %s", exc)
        return 550
    return 250


async def send_chat(traffic: Traffic, _phone: str, _email: str, text: str) -> int:
    """A visitor on the web chat: opens the widget's socket, writes, and stays a while before leaving."""
    socket = await traffic.http.ws_connect(traffic.base_url + "/chat/ws", params={"after": "0"})
    welcome = await socket.receive_json(timeout=10)
    if welcome.get("type") != "welcome":
        await socket.close()
        return 503
    await socket.send_json({"type": "message", "id": uuid.uuid4().hex, "text": text})
    traffic.later(_stay(traffic, socket))
    return 200


async def _stay(traffic: Traffic, socket: aiohttp.ClientWebSocketResponse) -> None:
    try:
        await traffic.pause(20, 90)
    finally:
        await socket.close()


def senders(settings: Settings) -> dict[str, Send]:
    """One sender per channel that takes contacts in: mail only where the service takes mail in."""
    found: dict[str, Send] = {"sms": send_sms, "voice": send_call, "chat": send_chat}
    if settings.mail_domains:
        found["email"] = send_mail
    return found


async def simulate(
    base_url: str,
    settings: Settings,
    people: DemoPeople,
    *,
    per_minute: float,
    duration_seconds: float,
    seed: int | None = None,
) -> dict[str, int]:
    """Send contacts at about `per_minute` for `duration_seconds` while the driven agents work; what was sent and
    answered, by channel."""
    chance = random.Random(seed)
    counted: dict[str, int] = {"answered": 0}
    stopping = asyncio.Event()
    channels = sorted(senders(settings).items())
    async with aiohttp.ClientSession() as http:
        traffic = Traffic(http, base_url, settings, chance, stopping)
        sent = 0
        agents = [
            asyncio.create_task(_work(http, base_url, people.agents[name], chance, counted, stopping))
            for name in DRIVEN_AGENTS
            if name in people.agents
        ]
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + duration_seconds
            while loop.time() < deadline:
                # Each channel once first, so that even a short run shows every one.
                channel, send = channels[sent] if sent < len(channels) else chance.choice(channels)
                sent += 1
                _, phone, email, _ = chance.choice(CLIENTS)
                if chance.random() < 0.3:
                    number = chance.randrange(2000, 9999)
                    phone, email = f"+1415555{number:04d}", f"someone.{number}@customer.example"  # someone new
                try:
                    status = await send(traffic, phone, email, chance.choice(QUESTIONS))
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    status = 503
                    log.warning("a simulated %s contact failed: %s", channel, exc)
                counted[channel] = counted.get(channel, 0) + 1
                if status >= 400:
                    log.warning("the service refused a simulated %s contact: %s", channel, status)
                await asyncio.sleep(chance.expovariate(per_minute / 60.0))
        finally:
            stopping.set()
            await asyncio.gather(*agents, *traffic.going_on, return_exceptions=True)
    return counted


async def _work(
    http: aiohttp.ClientSession,
    base_url: str,
    token: str,
    chance: random.Random,
    counted: dict[str, int],
    stopping: asyncio.Event,
) -> None:
    """One agent at its desktop: available, accepts most offers after a few seconds, replies, wraps up."""
    socket_url = base_url.replace("http", "ws", 1) + "/api/v1/agents/ws?token=" + token
    async with http.ws_connect(socket_url) as socket:
        await socket.send_json({"type": "state", "state": "available"})
        reader = asyncio.create_task(_frames(socket))
        try:
            while not stopping.is_set():
                frame = await _next(reader, socket, stopping)
                if frame is None:
                    return
                reader = asyncio.create_task(_frames(socket))
                if frame.get("type") == "offer":
                    await _handle_offer(socket, frame, chance, counted, stopping)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _frames(socket: aiohttp.ClientWebSocketResponse) -> dict[str, Any] | None:
    message = await socket.receive()
    if message.type is not aiohttp.WSMsgType.TEXT:
        return None
    frame: dict[str, Any] = json.loads(message.data)
    return frame


async def _next(
    reader: asyncio.Task[dict[str, Any] | None], socket: aiohttp.ClientWebSocketResponse, stopping: asyncio.Event
) -> dict[str, Any] | None:
    stop = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if reader not in done:
        return None
    return reader.result()


async def _handle_offer(
    socket: aiohttp.ClientWebSocketResponse,
    frame: dict[str, Any],
    chance: random.Random,
    counted: dict[str, int],
    stopping: asyncio.Event,
) -> None:
    reservation = frame["reservation"]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), chance.uniform(1, 6))
    if stopping.is_set():
        return
    if chance.random() < 0.1:
        await socket.send_json({"type": "reject", "reservation_id": reservation["id"]})
        return
    await socket.send_json({"type": "accept", "reservation_id": reservation["id"]})
    counted["answered"] += 1
    conversation = reservation["conversation_id"]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), chance.uniform(2, 5))
    await socket.send_json({"type": "reply", "conversation_id": conversation, "text": chance.choice(REPLIES)})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), chance.uniform(5, 20))
    await socket.send_json({"type": "complete", "conversation_id": conversation})
