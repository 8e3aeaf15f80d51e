"""Webhook receivers on loopback, as an integrator runs one: they answer as a test scripts them, keep what they
acknowledged, and verify signatures as the contract says (written from it, not from our code)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on loopback. `script` says how it meets each request in turn ("fail": 500, "hang":
    no answer until the test ends); once it runs out, requests are acknowledged (204) and kept in `received`."""

    script: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    requests: int = 0
    open_requests: int = 0
    url: str = ""
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        behaviour = self.script.pop(0) if self.script else "ok"
        if behaviour == "hang":
            self.open_requests += 1
            try:
                await self.released.wait()
            finally:
                self.open_requests -= 1
        if behaviour in ("fail", "hang"):
            return web.Response(status=500)
        self.received.append(Received(dict(request.headers), body))
        return web.Response(status=204)


class Receivers:
    """Receivers on loopback for one test, stopped at its end."""

    def __init__(self) -> None:
        self._started: list[tuple[Receiver, web.AppRunner]] = []

    async def start(self, *script: str) -> Receiver:
        receiver = Receiver(script=list(script))
        app = web.Application()
        app.router.add_post("/hook", receiver.answer)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        self._started.append((receiver, runner))
        return receiver

    async def stop(self) -> None:
        for receiver, runner in self._started:
            receiver.released.set()
            await runner.cleanup()


def verified(secret: str, received: Received) -> bool:
    """What a receiver does with `X-CC-Signature` (CONTRACT), written here from the contract, not our code."""
    parts = dict(part.split("=", 1) for part in received.headers["X-CC-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) < 300
    return fresh and hmac.compare_digest(expected, parts["v1"])


def ids_by_entity(received: list[Received]) -> dict[str, list[int]]:
    """Each entity's event ids in the order the receiver first acknowledged them."""
    seen: set[str] = set()
    entities: dict[str, list[int]] = {}
    for delivery in received:
        body = json.loads(delivery.body)
        if body["id"] not in seen:
            seen.add(body["id"])
            entities.setdefault(body["partitionkey"], []).append(int(body["id"]))
    return entities
