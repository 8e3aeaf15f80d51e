"""An accepted call connected to its agent: Twilio is told, through its REST API, to take the caller out of the
queue and `<Dial>` the agent's endpoint (`POST .../Calls/{CallSid}.json` with `Twiml`)."""

from __future__ import annotations

import logging
import uuid

import aiohttp

from channels.twilio.rest import SEND_TIMEOUT, account_url, basic_auth
from channels.twilio.voice_store import FINAL_RANK, VoiceStore
from channels.twilio.voice_twiml import client_identity, dial
from contactcenter.errors import Unavailable
from schema import Channel, Interaction
from schema.voice import VoiceEndpoint

log = logging.getLogger(__name__)


class CallConnector:
    """The voice channel's `AnswerPort`: what accepting a call does on Twilio's side."""

    def __init__(
        self, http: aiohttp.ClientSession, store: VoiceStore, *, api_base: str, account_sid: str, auth_token: str
    ) -> None:
        self._http = http
        self._store = store
        self._calls_url = f"{account_url(api_base, account_sid)}/Calls"
        self._headers = basic_auth(account_sid, auth_token)

    async def answered(self, agent_id: uuid.UUID, interaction: Interaction) -> None:
        """Connect the waiting call to the agent, once: a call connected already (the desktop's retry of its
        accept), ended, or that is no call (a voicemail) is left alone."""
        if interaction.channel is not Channel.VOICE:
            return
        call_sid = interaction.provider_id
        call = await self._store.call(call_sid)
        if call is None or call.connected or call.rank >= FINAL_RANK:
            return
        endpoint = await self._store.endpoint(agent_id) or VoiceEndpoint(
            kind="client", address=client_identity(agent_id)
        )
        await self._redirect(call_sid, dial(endpoint))
        await self._store.call_connected(call_sid, agent_id)
        log.info("call connected to agent %s", agent_id)

    async def _redirect(self, call_sid: str, twiml: str) -> None:
        url = f"{self._calls_url}/{call_sid}.json"
        try:
            async with self._http.post(
                url, data={"Twiml": twiml}, headers=self._headers, timeout=SEND_TIMEOUT
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"Twilio could not be reached to connect the call: {type(exc).__name__}") from exc
        if status >= 400:
            log.warning("Twilio refused to connect a call with HTTP %s", status)
            raise Unavailable(f"Twilio answered HTTP {status} to connecting the call; accept again")
