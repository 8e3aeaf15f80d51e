"""Calls through Twilio's REST API (`CC_TWILIO_API_BASE`): an accepted call connected to its agent — Twilio is
told to take the caller out of the queue and `<Dial>` the agent's endpoint (`POST .../Calls/{CallSid}.json`
with `Twiml`) — and an agent's call out to a client (`POST .../Calls.json`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

import aiohttp

from channels.twilio.rest import SEND_TIMEOUT, account_url, basic_auth
from channels.twilio.voice_store import FINAL_RANK, VoiceStore
from channels.twilio.voice_twiml import (
    DEFAULT_MAX_WAIT_SECONDS,
    PLACED_QUERY,
    STATUS_PATH,
    VoiceTwiml,
    client_identity,
    dial,
    dial_number,
    endpoint_address,
)
from contactcenter.agents import AgentCallsPort
from contactcenter.errors import Invalid, Unavailable
from schema import Channel, Interaction
from schema.voice import VoiceEndpoint

log = logging.getLogger(__name__)


class TwilioCalls:
    """Twilio's Calls resource: update a live call, or place a new one."""

    def __init__(self, http: aiohttp.ClientSession, *, api_base: str, account_sid: str, auth_token: str) -> None:
        self._http = http
        self._calls_url = f"{account_url(api_base, account_sid)}/Calls"
        self._headers = basic_auth(account_sid, auth_token)

    async def redirect(self, call_sid: str, twiml: str) -> None:
        """The live call runs `twiml` now (it leaves its queue)."""
        await self._post(f"{self._calls_url}/{call_sid}.json", {"Twiml": twiml})

    async def place(self, form: Mapping[str, str]) -> str:
        """A new call (`To`, `From`, `Twiml`, ...): its CallSid."""
        answer = await self._post(f"{self._calls_url}.json", form)
        sid = answer.get("sid")
        if not isinstance(sid, str) or not sid:
            raise Unavailable("Twilio did not say which call it placed; try again")
        return sid

    async def _post(self, url: str, form: Mapping[str, str]) -> dict[str, object]:
        try:
            async with self._http.post(url, data=dict(form), headers=self._headers, timeout=SEND_TIMEOUT) as response:
                status = response.status
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"Twilio could not be reached: {type(exc).__name__}") from exc
        if status >= 500 or status in (401, 429):
            log.warning("Twilio refused a call request with HTTP %s", status)
            raise Unavailable(f"Twilio answered HTTP {status}; try again")
        if status >= 400 or not isinstance(answer, dict):
            detail = answer.get("message", "") if isinstance(answer, dict) else ""
            raise Invalid(f"Twilio refused the call: {detail or status}", field="call")
        return answer


def status_callback(public_url: str | None) -> dict[str, str]:
    """What asks Twilio for a placed call's status callbacks, whose final one frees its agent. Twilio needs an
    absolute URL: without `CC_PUBLIC_URL` none is asked for, and the call occupies nobody (nothing would free
    the agent before the longest call's bound). The URL says the call is one we placed (`placed=1`, signed with
    the rest): its end may come before the REST answer that names it is recorded, and is kept then."""
    if not public_url:
        return {}
    return {"StatusCallback": public_url.rstrip("/") + STATUS_PATH + "?" + PLACED_QUERY, "StatusCallbackMethod": "POST"}


async def endpoint_of(store: VoiceStore, agent_id: uuid.UUID) -> VoiceEndpoint:
    """Where the agent's calls ring: its configured endpoint, else its Twilio Client identity."""
    return await store.endpoint(agent_id) or VoiceEndpoint(kind="client", address=client_identity(agent_id))


async def connect_agent(store: VoiceStore, agents: AgentCallsPort, call_sid: str, agent_id: uuid.UUID) -> None:
    """The call is the agent's now (`call.connected`), and occupies it until it ends."""
    await store.call_connected(call_sid, agent_id)
    await occupy_until_ended(store, agents, call_sid, agent_id)


async def occupy_until_ended(store: VoiceStore, agents: AgentCallsPort, call_sid: str, agent_id: uuid.UUID) -> None:
    """The agent takes no work until the call ends. The end is read after the agent is occupied, as the status
    callback frees after storing it: a final status that came meanwhile, in either order, leaves the agent free."""
    await agents.connected(agent_id, call_sid)
    call = await store.call(call_sid)
    if call is None or call.rank >= FINAL_RANK:
        await agents.ended(call_sid)


class CallConnector:
    """The voice channel's `AnswerPort`: what accepting a call does on Twilio's side."""

    def __init__(self, calls: TwilioCalls, store: VoiceStore, agents: AgentCallsPort, public_url: str | None) -> None:
        self._calls = calls
        self._store = store
        self._agents = agents
        self._status_callback = status_callback(public_url)
        self._twiml = VoiceTwiml(public_url)

    async def answered(self, agent_id: uuid.UUID, interaction: Interaction) -> None:
        """Connect the waiting call to the agent, once: a call connected already (the desktop's retry of its
        accept), ended, or that is no call (a voicemail) is left alone."""
        if interaction.channel is not Channel.VOICE:
            return
        call_sid = interaction.provider_id
        call = await self._store.call(call_sid)
        if call is None or call.connected:
            return
        if call.rank >= FINAL_RANK:
            if call.callback_requested:
                await self._call_back(call_sid, call.from_number, call.to_number, agent_id)
            return
        try:
            await self._calls.redirect(call_sid, dial(await endpoint_of(self._store, agent_id)))
        except Invalid as exc:
            # Twilio refuses to redirect a call that ended meanwhile: its status callback follows.
            raise Unavailable(f"the call could not be connected: {exc.message}") from exc
        await connect_agent(self._store, self._agents, call_sid, agent_id)
        log.info("call connected to agent %s", agent_id)

    async def handed_off(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, queue: str) -> None:
        """The agent transfers the conversation of the call it is on: Twilio takes the caller from the agent back
        into a queue (the queue's name: its wait music and place, its longest wait), and the call no longer
        occupies the agent. No call in progress there (a voicemail, a call over): nothing to do on Twilio's side."""
        call_sid = await self._store.call_of_agent(conversation_id, agent_id)
        if call_sid is None:
            return
        try:
            await self._calls.redirect(call_sid, self._twiml.enqueue(queue, max_wait_seconds=DEFAULT_MAX_WAIT_SECONDS))
        except Invalid as exc:
            # Twilio refuses to redirect a call that ended meanwhile: its status callback follows.
            raise Unavailable(f"the call could not be transferred: {exc.message}") from exc
        if await self._store.call_handed_off(call_sid, agent_id, queue):
            await self._agents.ended(call_sid)
        log.info("call handed from agent %s to queue %s", agent_id, queue)

    async def _call_back(self, call_sid: str, caller: str, ours: str, agent_id: uuid.UUID) -> None:
        """The caller who asked to be called back, now: the agent's endpoint rings, then the caller's number. The
        call placed is a call of its own (its CallSid), which occupies the agent until its final status."""
        endpoint = await endpoint_of(self._store, agent_id)
        form = {"To": endpoint_address(endpoint), "From": ours, "Twiml": dial_number(caller, ours)}
        placed_sid = await self._calls.place(form | self._status_callback)
        if not await self._store.callback_placed(call_sid, placed_sid, agent_id):
            return
        if self._status_callback:  # its status callbacks will say when it ends
            await occupy_until_ended(self._store, self._agents, placed_sid, agent_id)
        log.info("callback placed for agent %s", agent_id)
