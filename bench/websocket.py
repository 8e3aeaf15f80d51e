"""A lean WebSocket client (RFC 6455) for the simulated agents: one protocol object per socket, frames parsed
as they arrive and handed to a callback, no task and no queue per frame.

The load generator shares the machine with the service it measures: a general client (aiohttp's, where each
frame wakes the task awaiting `receive`) cost the pool of agents a large share of the CPU per contact
(docs/performance.md, "Figures behind choices in the code").
What the desktop socket needs is small: an upgrade, text frames both ways, pings answered, a close.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import cast

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
MAX_HEAD_BYTES = 16 * 1024


class WebSocketError(Exception):
    """The upgrade was refused or the server broke the protocol."""


def _masked(payload: bytes) -> bytes:
    """A client's payload XORed with a fresh masking key, the key in front (RFC 6455 §5.3)."""
    key = os.urandom(4)
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return key + (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _masked(payload)


class WebSocketClient(asyncio.Protocol):
    """Upgrades `path` on connection, then hands each text message to `on_text`; `opened` resolves when the
    upgrade is answered (or fails with why it was not), `closed` when the connection ends."""

    def __init__(self, host: str, path: str, on_text: Callable[[str], None]) -> None:
        self._key = base64.b64encode(os.urandom(16))
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._on_text = on_text
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._fragments: list[bytes] = []
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._transport.write(self._request)

    def send_text(self, text: str) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(client_frame(TEXT, text.encode()))

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(client_frame(CLOSE, struct.pack("!H", 1000)))
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            if not self._upgraded and not self._upgrade():
                return
            self._frames()
        except WebSocketError as exc:
            self._end(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    def _upgrade(self) -> bool:
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise WebSocketError("no end to the upgrade's answer")
            return False
        lines = bytes(self._buffer[:head_end]).split(b"\r\n")
        del self._buffer[: head_end + 4]
        if lines[0].split(b" ", 2)[1:2] != [b"101"]:
            raise WebSocketError(f"upgrade refused: {lines[0]!r}")
        expected = base64.b64encode(hashlib.sha1(self._key + ACCEPT_GUID).digest())  # SHA-1: the RFC fixes it
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines)}
        if headers.get(b"sec-websocket-accept") != expected:
            raise WebSocketError("the upgrade's answer does not carry our key's accept value")
        self._upgraded = True
        if not self.opened.done():
            self.opened.set_result(None)
        return True

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            if second & 0x80:
                raise WebSocketError("a server's frame must not be masked")
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                (length,), start = struct.unpack_from("!H", buffer, 2), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                (length,), start = struct.unpack_from("!Q", buffer, 2), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            self._frame(first & 0x80 != 0, first & 0x0F, payload)

    def _frame(self, final: bool, opcode: int, payload: bytes) -> None:
        if opcode == BINARY:
            raise WebSocketError("the desktop socket speaks text frames only")
        if opcode in (TEXT, CONTINUATION):
            self._fragments.append(payload)
            if final:
                message, self._fragments = b"".join(self._fragments), []
                self._on_text(message.decode())
        elif opcode == PING:
            assert self._transport is not None
            self._transport.write(client_frame(PONG, payload))
        elif opcode == CLOSE:
            self.close()

    def _end(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._transport.close()
        if not self.opened.done():
            self.opened.set_exception(exc or WebSocketError("closed before the upgrade was answered"))
        if not self.closed.done():
            self.closed.set_result(None)
