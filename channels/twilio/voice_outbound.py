"""Click to call: `POST /api/v1/voice/calls` — an agent calls a client from its card. Twilio rings the agent's
endpoint first and, when it answers, dials the client's number showing ours; the call is on the client's
timeline (an outbound voice interaction) and in the event stream (`call.placed`)."""

from __future__ import annotations

import uuid

from aiohttp import web

from channels import Gatekeeper
from channels.twilio.voice_connect import TwilioCalls, endpoint_of, occupy_until_ended, status_callback
from channels.twilio.voice_store import VoiceStore
from channels.twilio.voice_twiml import dial_number, endpoint_address
from contactcenter.agents import AgentCallsPort
from contactcenter.api.operations import Access, Answer, Operation, failures
from contactcenter.errors import Invalid, NotFound
from contactcenter.http_errors import read_body
from contactcenter.identities import normalise_phone
from contactcenter.settings import Settings
from schema.voice import CallPlaced, CallRequest

PLACE_CALL = Operation(
    "POST",
    "/api/v1/voice/calls",
    "placeCall",
    "Click to call: the agent's endpoint rings, then the client's number (one of its card's phones)",
    {
        201: Answer("the call placed, on the client's timeline", CallPlaced),
        **failures(400, 401, 403, 404, 408, 413, 503, reasons={503: "Twilio could not be reached: try again"}),
    },
    access=Access.AGENT,
    body=CallRequest,
)


class ClickToCall:
    OPERATIONS = (PLACE_CALL,)

    def __init__(
        self, settings: Settings, gatekeeper: Gatekeeper, store: VoiceStore, calls: TwilioCalls, agents: AgentCallsPort
    ) -> None:
        self._region = settings.default_region
        self._status_callback = status_callback(settings.public_url)
        self._gatekeeper = gatekeeper
        self._store = store
        self._calls = calls
        self._agents = agents

    def routes(self) -> list[web.RouteDef]:
        return [PLACE_CALL.route(self.place)]

    async def place(self, request: web.Request) -> web.Response:
        agent = await self._gatekeeper.require_agent(request)
        wanted = await read_body(request, CallRequest)
        theirs = await self._client_number(wanted)
        ours = await self._our_number(wanted)
        endpoint = await endpoint_of(self._store, agent.id)
        form = {"To": endpoint_address(endpoint), "From": ours, "Twiml": dial_number(theirs, ours)}
        call_sid = await self._calls.place(form | self._status_callback)
        interaction_id = uuid.uuid4()
        await self._store.call_placed(
            interaction_id, call_sid, wanted.client_id, ours=ours, theirs=theirs, agent_id=agent.id
        )
        if self._status_callback:  # its status callbacks will say when it ends
            await occupy_until_ended(self._store, self._agents, call_sid, agent.id)
        placed = CallPlaced(call_sid=call_sid, interaction_id=interaction_id, to=theirs, from_number=ours)
        return web.json_response(placed.model_dump(mode="json"), status=201)

    async def _client_number(self, wanted: CallRequest) -> str:
        """The number to call: one of the card's phones, never a number the card does not hold."""
        phones = await self._store.client_phones(wanted.client_id)
        if phones is None:
            raise NotFound("no such client", field="client_id")
        if wanted.to is None:
            if not phones:
                raise Invalid("the client's card holds no phone number", field="to")
            return phones[0]
        number = normalise_phone(wanted.to, self._region, field="to")
        if number not in phones:
            raise Invalid("not one of the client's phone numbers", field="to")
        return number

    async def _our_number(self, wanted: CallRequest) -> str:
        if wanted.from_number is not None:
            return normalise_phone(wanted.from_number, self._region, field="from_number")
        number = await self._store.first_number()
        if number is None:
            raise Invalid("no number of ours has a menu: say which one the client sees", field="from_number")
        return number
