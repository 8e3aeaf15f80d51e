"""A chat visitor as the widget is one: a real WebSocket client on `/chat/ws`, keeping its token and the number
of the last message it saw."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp


class ChatVisitor:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str | None = None) -> None:
        self.http = http
        self.base_url = base_url
        self.token = token
        self.seen = 0
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: dict[str, Any] = {}

    async def connect(self, *, after: int | None = None, origin: str | None = None) -> dict[str, Any]:
        """Open the socket (resuming with the token, after the last message seen) and return `welcome`."""
        params = {"after": str(self.seen if after is None else after)}
        if self.token:
            params["token"] = self.token
        headers = {"Origin": origin} if origin else {}
        self.socket = await self.http.ws_connect(f"{self.base_url}/chat/ws", params=params, headers=headers)
        self.welcome = await self.receive("welcome")
        self.token = self.welcome["token"]
        for entry in self.welcome["history"]:
            self.seen = max(self.seen, entry["seq"])
        return self.welcome

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.socket is not None
        await self.socket.send_str(json.dumps(frame))

    async def say(self, text: str, message_id: str | None = None) -> dict[str, Any]:
        """Send a message; return its `ack`, then read its own echo (the transcript's entry) too."""
        message_id = message_id or uuid.uuid4().hex
        await self.send({"type": "message", "id": message_id, "text": text})
        ack = await self.receive("ack")
        assert ack["id"] == message_id
        if ack["seq"] > self.seen:
            echo = await self.receive("message")
            assert (echo["seq"], echo["from"], echo["text"]) == (ack["seq"], "visitor", text)
        return ack

    async def receive(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame, which must be of `kind` (nothing goes unnoticed); a message must be the next number."""
        assert self.socket is not None
        async with asyncio.timeout(timeout):
            frame = await self.socket.receive()
        assert frame.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {frame.type}: {frame.data!r}"
        message: dict[str, Any] = json.loads(frame.data)
        assert message["type"] == kind, f"expected {kind}, got {message}"
        if kind == "message":
            assert message["seq"] == self.seen + 1, f"expected message {self.seen + 1}, got {message}"
            self.seen = message["seq"]
        return message

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
