"""A local stand-in of Twilio's REST API for the bench's calls: it records each call the service connects when
an agent accepts and then, as Twilio would, posts the call's signed status callbacks: `in-progress` once it is
connected, `completed` when the agent has held it for the bench's hold time."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bench.traffic import ACCOUNT_SID, VoiceTraffic, twilio_signature


@dataclass
class StandInFigures:
    connected: int = 0  # calls the service connected through the REST API
    refused: int = 0  # REST calls with the wrong credentials
    statuses: Counter[int] = field(default_factory=Counter)  # answers to the status callbacks posted
    completed: int = 0  # calls whose `completed` status callback was posted


class TwilioStandIn:
    """`POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` on loopback: checks the basic auth, records
    the connection, and posts the call's status callbacks to the service (signed), as Twilio would: in progress
    at once, completed after `hold` seconds (the agent's conversation)."""

    def __init__(self, auth_token: str, *, hold: float = 0.1) -> None:
        self._auth_token = auth_token
        self._hold = hold
        credentials = base64.b64encode(f"{ACCOUNT_SID}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        self.figures = StandInFigures()
        self.service_url = ""
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._callbacks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._connect)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._http = aiohttp.ClientSession()

    async def settled(self) -> None:
        """Until every call connected so far has been ended by its status callbacks."""
        while self._callbacks:
            await asyncio.gather(*self._callbacks)

    async def stop(self) -> None:
        await self.settled()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _connect(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self._authorization or request.match_info["account"] != ACCOUNT_SID:
            self.figures.refused += 1
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        await request.post()
        call_sid = request.match_info["call"]
        self.figures.connected += 1
        task = asyncio.create_task(self._call_ended(call_sid))
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)
        return web.json_response({"sid": call_sid, "status": "in-progress"})

    async def _call_ended(self, call_sid: str) -> None:
        """The connected call's life as Twilio tells it: in progress now, completed once the agent held it."""
        started = asyncio.get_running_loop().time()
        await self._status(call_sid, "in-progress")
        await asyncio.sleep(max(0.0, self._hold - (asyncio.get_running_loop().time() - started)))
        await self._status(call_sid, "completed", CallDuration=str(max(1, round(self._hold))))
        self.figures.completed += 1

    async def _status(self, call_sid: str, status: str, **more: str) -> None:
        assert self._http is not None
        form = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "CallStatus": status, **more}
        url = f"{self.service_url}{VoiceTraffic.PATH}/status"
        headers = {"X-Twilio-Signature": twilio_signature(self._auth_token, url, form)}
        try:
            async with self._http.post(url, data=form, headers=headers) as response:
                self.figures.statuses[response.status] += 1
        except aiohttp.ClientError:
            self.figures.statuses[0] += 1
