"""The lag of events, as an integrator sees it: a consumer bound to the events exchange (`#`) that notes, for
each event, the time it is received minus the event's `time` (both clocks this host's). It runs as a process of
its own (`python -m bench.event_lag`), so its work neither slows the load generator nor hides in its figures;
the bench starts it before the load and stops it after (`EventLagConsumer`).

As a process: prints `ready` once its queue is bound, then on SIGTERM (or SIGINT) one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from datetime import datetime

import aio_pika

TIME_FIELD = b'"time":"'


def event_time(body: bytes) -> float | None:
    """The event's `time` as Unix seconds, read straight from the structured JSON (thousands a second: a full
    parse per event would be this process's main work); None when the body carries none."""
    start = body.find(TIME_FIELD)
    if start < 0:
        return None
    start += len(TIME_FIELD)
    end = body.find(b'"', start)
    try:
        return datetime.fromisoformat(body[start:end].decode()).timestamp()
    except ValueError:
        return None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lag_figures(lags_ms: dict[str, list[float]], received: int) -> dict[str, object]:
    """The lag's percentiles over every event, and its median per type (where the lag comes from)."""
    every = [lag for lags in lags_ms.values() for lag in lags]
    return {
        "received": received,
        "p50": _rounded(percentile(every, 0.50)),
        "p95": _rounded(percentile(every, 0.95)),
        "p99": _rounded(percentile(every, 0.99)),
        "max": _rounded(max(every)) if every else None,
        "p50_by_type": {kind: _rounded(percentile(lags, 0.50)) for kind, lags in sorted(lags_ms.items())},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def consume(amqp_url: str, exchange_name: str) -> dict[str, object]:
    connection = await aio_pika.connect(amqp_url)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    lags_ms: dict[str, list[float]] = {}
    received = 0

    def note(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal received
        now = time.time()
        received += 1
        sent = event_time(message.body)
        if sent is not None:
            lags_ms.setdefault(message.routing_key or "", []).append(1000 * (now - sent))

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        note(message)

    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        # Exclusive: the broker deletes it with this connection, whatever happens to the bench.
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")
        await queue.consume(on_message, no_ack=True)
        print("ready", flush=True)
        await stopping.wait()
    finally:
        await connection.close()
    return lag_figures(lags_ms, received)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.event_lag", description=__doc__)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--exchange", required=True, help="the events exchange, `<namespace>.events`")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        figures = asyncio.run(consume(args.amqp_url, args.exchange))
    else:
        figures = uvloop.run(consume(args.amqp_url, args.exchange))
    print(json.dumps(figures), flush=True)


class EventLagConsumer:
    """The bench's handle on the consumer process."""

    def __init__(self, amqp_url: str, exchange: str) -> None:
        self._arguments = ["-m", "bench.event_lag", "--amqp-url", amqp_url, "--exchange", exchange]
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, *self._arguments, stdout=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError("the event lag consumer did not start")

    async def figures(self) -> dict[str, object]:
        """Stop it; what it measured."""
        assert self._process is not None and self._process.stdout is not None
        self._process.terminate()
        output = await asyncio.wait_for(self._process.stdout.read(), 60)
        await self._process.wait()
        result: dict[str, object] = json.loads(output)
        return result

    async def close(self) -> None:
        """Stop it if it still runs (a run that failed midway)."""
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


if __name__ == "__main__":
    main()
