"""A pool of simulated agents on the real desktop WebSocket: each accepts every offer after a delay, holds
the conversation a while once the accept is answered, completes it, and records when each offer arrived.

Agents are callbacks on a lean socket (`bench.websocket`), not tasks: what the pool costs in CPU comes out of
the two cores the service runs on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bench.websocket import WebSocketClient, WebSocketError

RECONNECTS = 20
START_TIMEOUT = 120.0  # seconds for the whole pool to connect and be available
OPEN_TIMEOUT = 10.0  # seconds for one socket to connect and be upgraded (then it is tried again)


@dataclass
class AgentFigures:
    # Arrival of the webhook (the server's clock, from the offered interaction) to the offer on the socket.
    arrival_to_offer_ms: list[float] = field(default_factory=list)
    # The same per channel: for a call, from the menu's answer (which publishes it); for mail, from the moment
    # the intake read the message (just before its 250).
    arrival_to_offer_ms_by_channel: dict[str, list[float]] = field(default_factory=dict)
    arrivals: list[float] = field(default_factory=list)  # each offer's arrival (epoch seconds), in the same order
    offers: Counter[str] = field(default_factory=Counter)  # reservation id -> times received
    card_entries: int = 0  # timeline entries over all offers' cards: how much each screen pop carried
    messages: int = 0
    # perf_counter() of the latest offer or message any agent received. (A contact that joined a conversation
    # still waiting reaches the agent inside that conversation's offer, not by its own id.)
    last_reached: float = 0.0
    revoked: int = 0
    errors: list[str] = field(default_factory=list)
    # Accepts the service answered (`accepted`, or an error): the channel's own work on an accept (a call
    # connected through the provider's REST API) is done by then.
    accepts_answered: int = 0
    # Sockets the service closed while the run went on (each agent reconnects, as a desktop would).
    dropped: int = 0


class AgentPool:
    def __init__(self, base_urls: list[str], tokens: list[str], *, accept_delay: float, hold: float) -> None:
        # Agents spread evenly over the API processes, as a load balancer would spread their sockets.
        self._addresses = [(url.hostname or "127.0.0.1", url.port or 80) for url in map(urlsplit, base_urls)]
        self._tokens = tokens
        self._accept_delay = accept_delay
        self._hold = hold
        self.figures = AgentFigures()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        ready = [asyncio.get_running_loop().create_future() for _ in self._tokens]
        self._tasks = [
            asyncio.create_task(self._agent(self._addresses[n % len(self._addresses)], token, ready[n]))
            for n, token in enumerate(self._tokens)
        ]
        async with asyncio.timeout(START_TIMEOUT):
            await asyncio.gather(*ready)

    async def accepts_done(self, within: float) -> None:
        """Wait (up to `within` seconds) until every offer's accept was answered: a run that stops sooner cuts
        the last accepts' work short (a call not yet connected when the stand-in of Twilio stops)."""
        deadline = time.monotonic() + within
        while self.figures.accepts_answered < sum(self.figures.offers.values()) - self.figures.revoked:
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _agent(self, address: tuple[str, int], token: str, ready: asyncio.Future[None]) -> None:
        """One agent, connected until the pool stops; a socket the service closes is counted and reopened."""
        for attempt in range(RECONNECTS):
            await self._session(address, token, ready)
            self.figures.dropped += 1
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        if not ready.done():
            ready.set_exception(RuntimeError(f"an agent could not connect in {RECONNECTS} attempts"))

    async def _session(self, address: tuple[str, int], token: str, ready: asyncio.Future[None]) -> None:
        host, port = address

        def connected() -> WebSocketClient:
            socket = WebSocketClient(
                f"{host}:{port}",
                f"/api/v1/agents/ws?token={token}",
                lambda text: self._on_message(socket, text, ready),
            )
            return socket

        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                _, socket = await asyncio.get_running_loop().create_connection(connected, host, port)
                try:
                    await socket.opened
                except TimeoutError:
                    socket.close()
                    raise
        except (OSError, WebSocketError, TimeoutError):
            return
        try:
            socket.send_text(json.dumps({"type": "state", "state": "available"}))
            await socket.closed
        finally:
            socket.close()

    def _on_message(self, socket: WebSocketClient, text: str, ready: asyncio.Future[None]) -> None:
        received = time.time()
        message: dict[str, Any] = json.loads(text)
        loop = asyncio.get_running_loop()
        match message["type"]:
            case "state":
                # Answered once the service holds the agent (its notices heard, live state set):
                # only then does the load start, so offers never wait for agents still connecting.
                if not ready.done():
                    ready.set_result(None)
            case "offer":
                reservation = message["reservation"]
                self._on_offer(message, received)
                self._reached()
                accept = json.dumps({"type": "accept", "reservation_id": reservation["id"]})
                loop.call_later(self._accept_delay, socket.send_text, accept)
            case "accepted":
                self.figures.accepts_answered += 1
                # Only work the service confirmed is held, and completed: an accept refused (the conversation
                # closed meanwhile) leaves nothing to complete.
                complete = json.dumps({"type": "complete", "conversation_id": message["conversation_id"]})
                loop.call_later(self._hold, socket.send_text, complete)
            case "message":
                self.figures.messages += 1
                self._reached()
            case "revoked":
                self.figures.revoked += 1
            case "error":
                self.figures.accepts_answered += 1
                self.figures.errors.append(message["error"]["message"])

    def _reached(self) -> None:
        self.figures.last_reached = time.perf_counter()

    def _on_offer(self, message: dict[str, Any], received: float) -> None:
        reservation = message["reservation"]
        arrived = datetime.fromisoformat(reservation["interaction"]["received_at"]).timestamp()
        self.figures.arrival_to_offer_ms.append((received - arrived) * 1000)
        by_channel = self.figures.arrival_to_offer_ms_by_channel
        by_channel.setdefault(reservation["interaction"]["channel"], []).append((received - arrived) * 1000)
        self.figures.arrivals.append(arrived)
        self.figures.offers[reservation["id"]] += 1
        self.figures.card_entries += len(message["card"]["timeline"])
