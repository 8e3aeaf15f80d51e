"""`contactcenter simulate`: realistic traffic for the demo center, through the service's real edges — customers
writing in on every channel it has a sender for below, and two of the demo's agents (Bob and Dan) answering on
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
from typing import Any

import aiohttp
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

Send = Callable[[aiohttp.ClientSession, str, Settings, str, str], Awaitable[int]]


async def send_sms(http: aiohttp.ClientSession, base_url: str, settings: Settings, phone: str, text: str) -> int:
    """A customer's SMS, as Twilio posts it: a form signed with the account's auth token."""
    path = "/channels/twilio/sms"
    form = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
        "From": phone,
        "To": DEALER_PHONE,
        "Body": text,
        "NumMedia": "0",
    }
    signed_url = (settings.public_url.rstrip("/") if settings.public_url else base_url) + path
    signature = RequestValidator(settings.twilio_auth_token.get_secret_value()).compute_signature(signed_url, form)
    async with http.post(base_url + path, data=form, headers={"X-Twilio-Signature": signature}) as response:
        await response.read()
        return response.status


# One sender per channel that takes contacts in through a webhook or a socket: a new channel adds its line.
SENDERS: dict[str, Send] = {"sms": send_sms}


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
    async with aiohttp.ClientSession() as http:
        agents = [
            asyncio.create_task(_work(http, base_url, people.agents[name], chance, counted, stopping))
            for name in DRIVEN_AGENTS
            if name in people.agents
        ]
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + duration_seconds
            while loop.time() < deadline:
                channel, send = chance.choice(sorted(SENDERS.items()))
                _, phone, _, _ = chance.choice(CLIENTS)
                if chance.random() < 0.3:
                    phone = f"+1415555{chance.randrange(2000, 9999):04d}"  # someone new
                status = await send(http, base_url, settings, phone, chance.choice(QUESTIONS))
                counted[channel] = counted.get(channel, 0) + 1
                if status >= 400:
                    log.warning("the service refused a simulated %s contact: %s", channel, status)
                await asyncio.sleep(chance.expovariate(per_minute / 60.0))
        finally:
            stopping.set()
            await asyncio.gather(*agents, return_exceptions=True)
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
