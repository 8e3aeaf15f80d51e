"""Runs the service in the test's process on a free port, and talks to it as its real clients do:
Twilio-signed webhooks over HTTP, the admin API, an agent desktop on the WebSocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from contactcenter.host.app import SERVICES, Role, create_app
from contactcenter.host.connections import ConnectionGuard, guarded_runner, guarded_site
from contactcenter.host.services import Services
from contactcenter.settings import Settings
from tests.frames import server_frame

ADMIN_TOKEN = "test-admin-token"
TWILIO_AUTH_TOKEN = "test-twilio-auth-token"
TWILIO_ACCOUNT_SID = "AC" + "0" * 32
# What agents' Voice access tokens are signed with and name.
TWILIO_API_KEY_SID = "SK" + "1" * 32
TWILIO_API_KEY_SECRET = "test-twilio-api-key-secret-of-32-bytes"
TWILIO_TWIML_APP_SID = "AP" + "2" * 32


@dataclass
class RunningService:
    base_url: str
    settings: Settings
    http: aiohttp.ClientSession
    app: web.Application
    guard: ConnectionGuard | None = None  # what watches the service's connections (when run in this process)

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def create_queue(self, name: str, channels: list[str]) -> dict[str, Any]:
        return await self._create("queues", {"name": name, "channels": channels})

    async def create_agent(self, name: str, queues: list[str]) -> dict[str, Any]:
        return await self._create("agents", {"name": name, "queues": queues})

    async def create_supervisor(self, name: str, queues: list[str]) -> dict[str, Any]:
        return await self._create("supervisors", {"name": name, "queues": queues})

    async def create_integration(self, name: str) -> dict[str, Any]:
        return await self._create("integrations", {"name": name})

    async def _create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1/{collection}"
        async with self.http.post(url, json=body, headers=self.admin_headers()) as response:
            assert response.status == 201, await response.text()
            created: dict[str, Any] = await response.json()
            return created

    async def post_sms(
        self, *, sender: str, body: str, message_sid: str | None = None, extra: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """What Twilio does on an inbound SMS: a signed form post."""
        form = {
            "MessageSid": message_sid or "SM" + uuid.uuid4().hex,
            "AccountSid": self.settings.twilio_account_sid,
            "From": sender,
            "To": "+15005550006",
            "Body": body,
            "NumMedia": "0",
            "FromCountry": "US",
            **(extra or {}),
        }
        return await self.post_twilio("/channels/twilio/sms", form)

    def call_form(self, call_sid: str, caller: str, *, status: str = "ringing", **more: str) -> dict[str, str]:
        """The parameters Twilio documents for a voice webhook (plus `more`, e.g. Digits or CallDuration)."""
        to = "+15005550006"
        return {
            "CallSid": call_sid,
            "AccountSid": self.settings.twilio_account_sid,
            "From": caller,
            "To": to,
            "CallStatus": status,
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
            "ForwardedFrom": "",
            "CallerName": "",
            "ParentCallSid": "",
            "CallToken": "%7B%22parentCallInfoToken%22%3A%22eyJ%22%7D",
            "Caller": caller,
            "Called": to,
            "FromCity": "SAN FRANCISCO",
            "FromState": "CA",
            "FromZip": "94103",
            "FromCountry": "US",
            "CallerCity": "SAN FRANCISCO",
            "CallerState": "CA",
            "CallerZip": "94103",
            "CallerCountry": "US",
            "ToCity": "",
            "ToState": "CA",
            "ToZip": "",
            "ToCountry": "US",
            "CalledCity": "",
            "CalledState": "CA",
            "CalledZip": "",
            "CalledCountry": "US",
            "StirVerstat": "TN-Validation-Passed-A",
            **more,
        }

    async def post_twilio(
        self, path: str, form: dict[str, str] | MultiDict[str], *, signature: str | None = None
    ) -> aiohttp.ClientResponse:
        url = f"{self.base_url}{path}"
        signed_url = (self.settings.public_url.rstrip("/") + path) if self.settings.public_url else url
        if signature is None:
            signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(signed_url, form)
        response = await self.http.post(url, data=form, headers={"X-Twilio-Signature": signature})
        await response.read()
        return response

    async def available_agent(self, name: str = "Ann", queues: tuple[str, ...] = ("sales",)) -> AgentDesktop:
        """A new agent of `queues`, connected on its desktop and available for work."""
        agent = await self.create_agent(name, list(queues))
        desktop = await self.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        return desktop

    async def agent_desktop(self, token: str) -> AgentDesktop:
        socket = await self.http.ws_connect(f"{self.base_url}/api/v1/agents/ws?token={token}")
        desktop = AgentDesktop(socket)
        hello = await desktop.receive("hello")
        desktop.agent_id = hello["agent"]["id"]
        return desktop


class AgentDesktop:
    """An agent's desktop: a real WebSocket client."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.agent_id = ""
        self.received_at: dict[str, float] = {}

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send_json(message)

    async def receive(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of `kind`, failing on any other kind in between (so nothing goes unnoticed)."""
        message = await self.receive_any(timeout)
        assert message["type"] == kind, f"expected {kind}, got {message}"
        return message

    async def receive_any(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message, whatever its kind."""
        async with asyncio.timeout(timeout):
            frame = await self.socket.receive()
        assert frame.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {frame.type}: {frame.data!r}"
        message: dict[str, Any] = json.loads(frame.data)
        server_frame(frame.data)  # the wire contract: every frame a desktop gets is one the schema describes
        self.received_at[message["type"]] = time.perf_counter()
        return message

    async def command(self, message: dict[str, Any], answer: str) -> dict[str, Any]:
        await self.send(message)
        return await self.receive(answer)

    async def close(self) -> None:
        await self.socket.close()


@contextlib.asynccontextmanager
async def run_service(settings: Settings, role: Role = Role.ALL) -> AsyncIterator[RunningService]:
    """The service on a free loopback port, bound first so that its settings name the port it listens on
    (the origin the agent socket allows is made of them)."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    settings = settings.model_copy(update={"http_host": "127.0.0.1", "http_port": port})
    app = create_app(settings, role)
    runner = guarded_runner(app, settings)  # as `contactcenter serve` listens, so the tests prove what runs
    try:
        await runner.setup()
        site = guarded_site(runner, settings, "127.0.0.1", port, sock=listening)
        await site.start()
    except BaseException:
        listening.close()
        await runner.cleanup()
        raise
    try:
        async with aiohttp.ClientSession() as http:
            yield RunningService(f"http://127.0.0.1:{port}", settings, http, app, site.guard)
    finally:
        await runner.cleanup()


async def wait_ready(http: aiohttp.ClientSession, base_url: str, process: asyncio.subprocess.Process) -> None:
    """Until a service started as another process answers /readyz 200 (a minute at most)."""
    async with asyncio.timeout(60):
        while True:
            assert process.returncode is None, "the service exited during start-up"
            try:
                async with http.get(f"{base_url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)


class FakeTwilioApi:
    """Twilio's Messages and Calls REST endpoints on loopback: checks the basic auth and records what was sent
    (`sent`: messages; `calls`: each call update, with its CallSid)."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.authorization = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.sent: list[dict[str, str]] = []
        self.calls: list[dict[str, str]] = []
        self.placed: list[dict[str, str]] = []  # calls placed (click to call)
        # Set to make the next call updates fail with this HTTP status (Twilio away, or refusing).
        self.calls_status = 200
        # Run with the CallSid before a call update is answered (the caller hangs up at that very moment).
        self.before_call_update: Callable[[str], Awaitable[None]] | None = None
        # Run with the form and the new message's SID before a message is answered (its status callback first).
        self.before_message_answered: Callable[[dict[str, str], str], Awaitable[None]] | None = None
        # Run with the new CallSid and the form before a placed call is answered (it ends at once).
        self.before_call_placed: Callable[[str, dict[str, str]], Awaitable[None]] | None = None
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.authorization:
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        if request.match_info["account"] != self.account_sid:
            return web.json_response({"code": 20404, "message": "not found"}, status=404)
        form = {key: str(value) for key, value in (await request.post()).items()}
        if not form.get("To", "").startswith("+"):
            return web.json_response({"code": 21211, "message": "Invalid 'To' Phone Number"}, status=400)
        self.sent.append(form)
        sid = "SM" + uuid.uuid4().hex
        if self.before_message_answered is not None:
            await self.before_message_answered(form, sid)
        return web.json_response({"sid": sid, "status": "queued", **form}, status=201)

    async def _call(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.authorization:
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        if request.match_info["account"] != self.account_sid:
            return web.json_response({"code": 20404, "message": "not found"}, status=404)
        if self.calls_status != 200:
            return web.json_response({"code": 20500, "message": "Internal"}, status=self.calls_status)
        form = {key: str(value) for key, value in (await request.post()).items()}
        if self.before_call_update is not None:
            await self.before_call_update(request.match_info["call"])
        self.calls.append({"CallSid": request.match_info["call"], **form})
        return web.json_response({"sid": request.match_info["call"], "status": "in-progress"})

    async def _place_call(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.authorization:
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        form = {key: str(value) for key, value in (await request.post()).items()}
        if not form.get("To") or not form.get("From") or not form.get("Twiml"):
            return web.json_response({"code": 21201, "message": "No 'To' number is specified"}, status=400)
        sid = "CA" + uuid.uuid4().hex
        if self.before_call_placed is not None:
            await self.before_call_placed(sid, form)
        self.placed.append({"CallSid": sid, **form})
        return web.json_response({"sid": sid, "status": "queued", "to": form["To"]}, status=201)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._messages)
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._call)
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._place_call)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
