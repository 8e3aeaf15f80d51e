"""`python -m bench.supervisors`: the supervisors' stream on the real services, one process (`--role all`).

- latency: an SMS is routed to an available agent while one supervisor watches; the time from the contact's
  routing (the event's own time, `oldest_waiting_since` in the frame) to the frame showing it, in rounds;
- cost: the service's CPU over the same traffic (`--rate` SMS/s for `--duration` s, agents answering them)
  while 1 supervisor watches, then while `--watchers` do — and the frames they got.

Prints a short table and one JSON line. Figures belong in docs/performance.md, measured in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import time
import uuid
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import psutil

from bench.processes import ServiceProcesses
from bench.servers import AMQP_URL, DATABASE_URL, REDIS_URL, clean_up, free_ports
from bench.traffic import customer_number, twilio_signature


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.supervisors", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="latency rounds (default 20)")
    parser.add_argument("--watchers", type=int, default=100, help="supervisors watching at once (default 100)")
    parser.add_argument("--rate", type=float, default=10.0, help="SMS per second in the cost phases (default 10)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cost phase (default 10)")
    return parser.parse_args()


class Watcher:
    """One supervisor's stream, read as frames come."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self.frames = 0
        self.latest: dict[str, Any] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with self._http.get(self._url) as response:
            async for line in response.content:
                if line.startswith(b"data: "):
                    self.latest = json.loads(line[6:])
                    self.latest["_received"] = time.time()
                    self.frames += 1
                    self.changed.set()

    async def wait_for(self, check: Any, within: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while not (self.latest and check(self.latest)):
                self.changed.clear()
                await self.changed.wait()
        return self.latest

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._task


async def _sms(http: aiohttp.ClientSession, base: str, twilio_token: str, sender: str) -> None:
    form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": sender,
            "To": "+15005550006", "Body": "bench", "NumMedia": "0"}  # fmt: skip
    url = base + "/channels/twilio/sms"
    headers = {"X-Twilio-Signature": twilio_signature(twilio_token, url, form)}
    async with http.post(url, data=form, headers=headers) as response:
        await response.read()


async def _agent(http: aiohttp.ClientSession, base: str, token: str, stopping: asyncio.Event) -> None:
    """Accepts every offer at once and completes it: figures move, waiting returns to 0."""
    async with http.ws_connect(base.replace("http", "ws", 1) + "/api/v1/agents/ws?token=" + token) as socket:
        await socket.send_json({"type": "state", "state": "available"})
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(socket.receive(), 0.5)
                frame = json.loads(message.data) if message.type is aiohttp.WSMsgType.TEXT else {}
                if frame.get("type") == "offer":
                    await socket.send_json({"type": "accept", "reservation_id": frame["reservation"]["id"]})
                elif frame.get("type") == "accepted":
                    await socket.send_json({"type": "complete", "conversation_id": frame["conversation_id"]})


def _sales(frame: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(q for q in frame["queues"] if q["name"] == "bench")
    return found


async def _latency(
    http: aiohttp.ClientSession, base: str, twilio_token: str, agent_token: str, watcher: Watcher, rounds: int
) -> list[float]:
    """Rounds of one contact waiting (the agent offline): its routing event's time → the frame showing it; then
    the agent takes it and goes offline again, so the next round's contact is the oldest waiting."""
    latencies = []
    async with http.ws_connect(base.replace("http", "ws", 1) + "/api/v1/agents/ws?token=" + agent_token) as agent:
        for n in range(rounds):
            await _sms(http, base, twilio_token, customer_number(10_000 + n))
            frame = await watcher.wait_for(lambda f: _sales(f)["waiting"] == 1)
            routed = datetime.fromisoformat(_sales(frame)["oldest_waiting_since"]).timestamp()
            latencies.append(frame["_received"] - routed)
            await agent.send_json({"type": "state", "state": "available"})
            offer = await _frame_of(agent, "offer")
            await agent.send_json({"type": "accept", "reservation_id": offer["reservation"]["id"]})
            await _frame_of(agent, "accepted")
            await agent.send_json({"type": "complete", "conversation_id": offer["reservation"]["conversation_id"]})
            await _frame_of(agent, "completed")
            await agent.send_json({"type": "state", "state": "offline"})
            await watcher.wait_for(lambda f: _sales(f)["waiting"] == 0)
    return latencies


async def _frame_of(socket: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            frame: dict[str, Any] = await socket.receive_json()
            if frame.get("type") == kind:
                return frame


async def _cost_phase(
    http: aiohttp.ClientSession,
    base: str,
    twilio_token: str,
    service: psutil.Process,
    rate: float,
    duration: float,
    first: int,
) -> tuple[float, int]:
    """The service's CPU seconds while `rate` SMS/s come for `duration` s (and a second to settle)."""
    before = service.cpu_times()
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < duration:
        await _sms(http, base, twilio_token, customer_number(first + sent))
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    await asyncio.sleep(1.0)
    after = service.cpu_times()
    return (after.user + after.system) - (before.user + before.system), sent


async def run(args: argparse.Namespace) -> dict[str, object]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    admin_token, twilio_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    env = {
        "CC_ADMIN_TOKEN": admin_token, "CC_TWILIO_AUTH_TOKEN": twilio_token, "CC_LOG_LEVEL": "WARNING",
        "CC_MAX_CONNECTIONS_PER_CLIENT": "100000", "CC_DATABASE_URL": DATABASE_URL, "CC_REDIS_URL": REDIS_URL,
        "CC_AMQP_URL": AMQP_URL, "CC_NAMESPACE": namespace, "CC_DATABASE_SCHEMA": namespace,
    }  # fmt: skip
    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute(f'CREATE SCHEMA "{namespace}"')
    await conn.close()
    processes = ServiceProcesses(env, ["all"], free_ports(1))
    await processes.start()
    base = f"http://127.0.0.1:{processes.public_ports[0]}"
    stopping = asyncio.Event()
    watchers: list[Watcher] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            admin = {"Authorization": f"Bearer {admin_token}"}
            await http.post(f"{base}/api/v1/queues", json={"name": "bench", "channels": ["sms"]}, headers=admin)
            async with http.post(
                f"{base}/api/v1/agents", json={"name": "agent", "queues": ["bench"]}, headers=admin
            ) as response:
                agent_token = (await response.json())["token"]
            stream = f"{base}/api/v1/supervisor/stream?token={admin_token}"
            watchers.append(Watcher(http, stream))
            watchers[0].start()
            await watchers[0].wait_for(lambda f: any(q["name"] == "bench" for q in f["queues"]))
            latencies = await _latency(http, base, twilio_token, agent_token, watchers[0], args.rounds)
            agent = asyncio.create_task(_agent(http, base, agent_token, stopping))
            service = psutil.Process(processes.pids["all"])
            before_phase = watchers[0].frames
            one_cpu, one_sent = await _cost_phase(http, base, twilio_token, service, args.rate, args.duration, 20_000)
            one_frames = watchers[0].frames - before_phase
            for _ in range(args.watchers - 1):
                watchers.append(Watcher(http, stream))
                watchers[-1].start()
            await asyncio.sleep(2.0)
            counted_from = [w.frames for w in watchers]
            many_cpu, many_sent = await _cost_phase(http, base, twilio_token, service, args.rate, args.duration, 40_000)
            frames = [w.frames - c for w, c in zip(watchers, counted_from, strict=True)]
            stopping.set()
            await agent
    finally:
        for watcher in watchers:
            await watcher.stop()
        await processes.stop()
        await clean_up(namespace)
    ordered = sorted(latencies)
    return {
        "stream_latency_ms_p50": round(1000 * statistics.median(ordered), 1),
        "stream_latency_ms_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "stream_latency_ms_max": round(1000 * ordered[-1], 1),
        "rounds": len(ordered),
        "service_cpu_s_1_watcher": round(one_cpu, 2),
        "service_cpu_s_n_watchers": round(many_cpu, 2),
        "service_cpu_ms_per_contact_1_watcher": round(1000 * one_cpu / max(1, one_sent), 2),
        "service_cpu_ms_per_contact_n_watchers": round(1000 * many_cpu / max(1, many_sent), 2),
        "watchers": args.watchers,
        "contacts_per_phase": [one_sent, many_sent],
        "frames_per_watcher_1": one_frames,
        "frames_per_watcher_n_min": min(frames),
        "frames_per_watcher_n_max": max(frames),
    }


def main() -> None:
    result = asyncio.run(run(_arguments()))
    for key, value in result.items():
        print(f"{key:>28}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
