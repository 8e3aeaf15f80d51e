"""`python -m bench.chat`: web chat under load through its real edges (production layout: API and router
processes on the real servers). Visitors on real sockets (`/chat/ws`) each say something; agents on the desktop
socket accept, answer at once and complete. Prints one JSON line with:

- visitor -> agent: the visitor's frame leaving to the agent's offer arriving (both clocks are this process's);
- agent -> visitor: the agent's `reply` leaving to the visitor's socket receiving it;
- idle sockets held per GiB: `--idle` more visitors connected and silent, against the API process's memory
  before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import psutil

from bench.processes import ServiceProcesses
from bench.report import percentile
from bench.servers import AMQP_URL, DATABASE_URL, REDIS_URL, clean_up, free_ports
from bench.websocket import WebSocketClient

OPEN_TIMEOUT = 10.0


@dataclass
class ChatFigures:
    visitor_to_agent_ms: list[float] = field(default_factory=list)
    agent_to_visitor_ms: list[float] = field(default_factory=list)
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)


class Visitor:
    """One visitor's socket: says `text` once welcomed, records when the agent's answer arrives."""

    def __init__(self, figures: ChatFigures, done: asyncio.Future[None] | None) -> None:
        self.figures = figures
        self.done = done
        self.socket: WebSocketClient | None = None
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def say(self) -> None:
        assert self.socket is not None
        sent = {"type": "message", "id": uuid.uuid4().hex, "text": json.dumps({"sent": time.perf_counter()})}
        self.socket.send_text(json.dumps(sent))

    def on_text(self, text: str) -> None:
        frame: dict[str, Any] = json.loads(text)
        kind = frame["type"]
        if kind == "welcome" and not self.welcomed.done():
            self.welcomed.set_result(None)
        elif kind == "ack":
            self.figures.acknowledged += 1
        elif kind == "message" and frame["from"] == "agent":
            sent = json.loads(frame["text"])["sent"]
            self.figures.agent_to_visitor_ms.append((time.perf_counter() - sent) * 1000)
            if self.done is not None and not self.done.done():
                self.done.set_result(None)
        elif kind == "error":
            self.figures.errors.append(frame["error"]["code"])


class Agent:
    """Accepts every offer, answers at once with the time it answered, completes."""

    def __init__(self, figures: ChatFigures) -> None:
        self.figures = figures
        self.socket: WebSocketClient | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_text(self, text: str) -> None:
        # `hello` may come in the upgrade's own read, before `socket` is set: it needs no answer.
        frame: dict[str, Any] = json.loads(text)
        kind = frame["type"]
        socket = self.socket
        if kind == "state" and not self.ready.done():
            self.ready.set_result(None)
        elif kind == "offer" and socket is not None:
            sent = json.loads(frame["reservation"]["interaction"]["body"])["sent"]
            self.figures.visitor_to_agent_ms.append((time.perf_counter() - sent) * 1000)
            socket.send_text(json.dumps({"type": "accept", "reservation_id": frame["reservation"]["id"]}))
        elif kind == "accepted" and socket is not None:
            conversation = frame["conversation_id"]
            reply = {
                "type": "reply",
                "conversation_id": conversation,
                "text": json.dumps({"sent": time.perf_counter()}),
            }
            socket.send_text(json.dumps(reply))
            socket.send_text(json.dumps({"type": "complete", "conversation_id": conversation}))
        elif kind == "error":
            self.figures.errors.append(frame["error"]["code"])


async def _open(port: int, path: str, on_text: Any) -> WebSocketClient:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(OPEN_TIMEOUT):
        _, socket = await loop.create_connection(
            lambda: WebSocketClient(f"127.0.0.1:{port}", path, on_text), "127.0.0.1", port
        )
        await socket.opened
    return socket


async def _visitor(port: int, figures: ChatFigures, done: asyncio.Future[None] | None) -> Visitor:
    visitor = Visitor(figures, done)
    visitor.socket = await _open(port, "/chat/ws", visitor.on_text)
    await visitor.welcomed
    return visitor


async def _agents(port: int, admin: str, count: int, figures: ChatFigures) -> list[Agent]:
    headers = {"Authorization": f"Bearer {admin}"}
    base = f"http://127.0.0.1:{port}"
    agents = []
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/queues", json={"name": "web", "channels": ["chat"]}, headers=headers):
            pass
        for n in range(count):
            async with http.post(
                f"{base}/api/v1/agents", json={"name": f"agent {n}", "queues": ["web"]}, headers=headers
            ) as response:
                token = (await response.json())["token"]
            agent = Agent(figures)
            agent.socket = await _open(port, f"/api/v1/agents/ws?token={token}", agent.on_text)
            agent.socket.send_text(json.dumps({"type": "state", "state": "available"}))
            agents.append(agent)
    await asyncio.gather(*(agent.ready for agent in agents))
    return agents


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    return {
        "p50": round(percentile(values, 0.5), 2),
        "p95": round(percentile(values, 0.95), 2),
        "max": round(max(values), 2),
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    namespace = f"benchchat{uuid.uuid4().hex[:8]}"
    admin = secrets.token_urlsafe(16)
    env = {
        "CC_ADMIN_TOKEN": admin,
        "CC_CHAT_SECRET": secrets.token_urlsafe(32),
        "CC_LOG_LEVEL": "WARNING",
        "CC_MAX_CONNECTIONS_PER_CLIENT": "1000000",
        "CC_DATABASE_URL": DATABASE_URL,
        "CC_REDIS_URL": REDIS_URL,
        "CC_AMQP_URL": AMQP_URL,
        "CC_NAMESPACE": namespace,
        "CC_DATABASE_SCHEMA": namespace,
    }
    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute(f'CREATE SCHEMA "{namespace}"')
    await conn.close()
    service = ServiceProcesses(env, ["api", "router"], free_ports(2))
    figures = ChatFigures()
    sockets: list[WebSocketClient] = []
    await service.start()
    try:
        port = service.public_ports[0]
        api = psutil.Process(service.pids["api"])
        agents = await _agents(port, admin, args.agents, figures)
        sockets += [agent.socket for agent in agents if agent.socket is not None]
        loop = asyncio.get_running_loop()
        answered: list[asyncio.Future[None]] = []
        started = time.perf_counter()
        for n in range(args.chats):
            # Open loop: one new visitor every 1/rate s, whatever the answers' speed.
            await asyncio.sleep(max(0.0, started + n / args.rate - time.perf_counter()))
            done: asyncio.Future[None] = loop.create_future()
            visitor = await _visitor(port, figures, done)
            assert visitor.socket is not None
            sockets.append(visitor.socket)
            visitor.say()
            answered.append(done)
        async with asyncio.timeout(120):
            await asyncio.gather(*answered)
        elapsed = time.perf_counter() - started

        before = api.memory_info().rss
        idle = [await _visitor(port, figures, None) for _ in range(args.idle)]
        await asyncio.sleep(1.0)
        grown = api.memory_info().rss - before
        sockets += [visitor.socket for visitor in idle if visitor.socket is not None]
    finally:
        for socket in sockets:
            socket.close()
        await service.stop()
        await clean_up(namespace)
    return {
        "benchmark": "webchat",
        "chats": args.chats,
        "offered_rate_per_s": args.rate,
        "duration_s": round(elapsed, 2),
        "agents": args.agents,
        "acknowledged": figures.acknowledged,
        "visitor_to_agent_ms": _summary(figures.visitor_to_agent_ms),
        "agent_to_visitor_ms": _summary(figures.agent_to_visitor_ms),
        "idle_sockets": args.idle,
        "api_rss_growth_mb": round(grown / 2**20, 1),
        "idle_sockets_per_gib": round(args.idle / (grown / 2**30)) if grown > 0 else None,
        "errors": sorted(set(figures.errors)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__)
    parser.add_argument("--chats", type=int, default=200, help="visitors who each say one thing and get an answer")
    parser.add_argument("--rate", type=float, default=20, help="new visitors per second")
    parser.add_argument("--agents", type=int, default=10, help="agents answering")
    parser.add_argument("--idle", type=int, default=2000, help="silent visitors held open to measure memory")
    args = parser.parse_args()
    if args.chats < 1 or args.rate <= 0 or args.agents < 1 or args.idle < 0:
        parser.error("--chats, --rate and --agents must be above zero, --idle at least zero")
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
