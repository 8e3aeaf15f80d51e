"""The voice API under `/api/v1/voice`: each number's menu (admin), where an agent's calls ring (admin), and
the Twilio Voice access token an agent's browser or app registers with (agent)."""

from __future__ import annotations

import uuid

from aiohttp import web
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from channels import Gatekeeper
from channels.twilio.voice_store import VoiceStore
from channels.twilio.voice_twiml import client_identity
from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.errors import Invalid, NotFound, Unavailable
from contactcenter.http_errors import read_body
from contactcenter.identities import normalise_phone
from contactcenter.settings import Settings
from schema.voice import VoiceEndpoint, VoiceMenu, VoiceToken

_NUMBER = Parameter("number", "path", "the number callers dial, E.164 (+14155550100; URL-encode the +)", required=True)
_AGENT = Parameter("agent_id", "path", "the agent's id", required=True, schema={"type": "string", "format": "uuid"})
MENU_PATH = "/api/v1/voice/numbers/{number}"
PUT_MENU = Operation(
    "PUT",
    MENU_PATH,
    "putVoiceMenu",
    "Set what callers of a number hear: greeting, menu options (each a queue), opening hours, longest wait",
    {200: Answer("the menu as stored", VoiceMenu), **failures(400, 401, 403, 408, 413, 503)},
    access=Access.ADMIN,
    body=VoiceMenu,
    parameters=(_NUMBER,),
)
GET_MENU = Operation(
    "GET",
    MENU_PATH,
    "getVoiceMenu",
    "The menu of a number",
    {200: Answer("the menu", VoiceMenu), **failures(400, 401, 403, 404, 503)},
    access=Access.ADMIN,
    parameters=(_NUMBER,),
)
DELETE_MENU = Operation(
    "DELETE",
    MENU_PATH,
    "deleteVoiceMenu",
    "Remove a number's menu: its callers go straight to the oldest voice queue",
    {204: Answer("removed"), **failures(400, 401, 403, 404, 503)},
    access=Access.ADMIN,
    parameters=(_NUMBER,),
)
PUT_ENDPOINT = Operation(
    "PUT",
    "/api/v1/voice/agents/{agent_id}/endpoint",
    "putVoiceEndpoint",
    "Where an agent's calls ring: a Twilio Client identity, a phone number or a SIP address",
    {200: Answer("the endpoint as stored", VoiceEndpoint), **failures(400, 401, 403, 404, 408, 413, 503)},
    access=Access.ADMIN,
    body=VoiceEndpoint,
    parameters=(_AGENT,),
)
ISSUE_TOKEN = Operation(
    "POST",
    "/api/v1/voice/token",
    "issueVoiceToken",
    "A Twilio Voice access token for the calling agent (its identity is the one accepted calls ring)",
    {
        200: Answer("the token", VoiceToken),
        **failures(401, 403, 503, reasons={503: "no Twilio API key is configured (CC_TWILIO_API_KEY_SID, ...)"}),
    },
    access=Access.AGENT,
)


class VoiceAdminApi:
    OPERATIONS = (PUT_MENU, GET_MENU, DELETE_MENU, PUT_ENDPOINT, ISSUE_TOKEN)

    def __init__(self, settings: Settings, gatekeeper: Gatekeeper, store: VoiceStore) -> None:
        self._settings = settings
        self._gatekeeper = gatekeeper
        self._store = store

    def routes(self) -> list[web.RouteDef]:
        return [
            PUT_MENU.route(self.put_menu),
            GET_MENU.route(self.get_menu),
            DELETE_MENU.route(self.delete_menu),
            PUT_ENDPOINT.route(self.put_endpoint),
            ISSUE_TOKEN.route(self.issue_token),
        ]

    def _number(self, request: web.Request) -> str:
        return normalise_phone(request.match_info["number"], self._settings.default_region, field="number")

    async def put_menu(self, request: web.Request) -> web.Response:
        await self._gatekeeper.require_admin(request)
        number = self._number(request)
        menu = await read_body(request, VoiceMenu)
        await self._store.save_menu(number, menu)
        return web.json_response(menu.model_dump(mode="json"))

    async def get_menu(self, request: web.Request) -> web.Response:
        await self._gatekeeper.require_admin(request)
        menu = await self._store.menu(self._number(request))
        if menu is None:
            raise NotFound("no menu for this number", field="number")
        return web.json_response(menu.model_dump(mode="json"))

    async def delete_menu(self, request: web.Request) -> web.Response:
        await self._gatekeeper.require_admin(request)
        if not await self._store.delete_menu(self._number(request)):
            raise NotFound("no menu for this number", field="number")
        return web.Response(status=204)

    async def put_endpoint(self, request: web.Request) -> web.Response:
        await self._gatekeeper.require_admin(request)
        try:
            agent_id = uuid.UUID(request.match_info["agent_id"])
        except ValueError:
            raise Invalid("not an agent id", field="agent_id") from None
        endpoint = await read_body(request, VoiceEndpoint)
        if endpoint.kind == "phone":
            phone = normalise_phone(endpoint.address, self._settings.default_region, field="address")
            endpoint = endpoint.model_copy(update={"address": phone})
        if not await self._store.save_endpoint(agent_id, endpoint):
            raise NotFound("no such agent", field="agent_id")
        return web.json_response(endpoint.model_dump(mode="json"))

    async def issue_token(self, request: web.Request) -> web.Response:
        agent = await self._gatekeeper.require_agent(request)
        settings = self._settings
        secret = settings.twilio_api_key_secret.get_secret_value()
        if not (settings.twilio_api_key_sid and secret and settings.twilio_twiml_app_sid):
            raise Unavailable(
                "Voice tokens need CC_TWILIO_API_KEY_SID, CC_TWILIO_API_KEY_SECRET and CC_TWILIO_TWIML_APP_SID"
            )
        identity = client_identity(agent.id)
        token = AccessToken(
            settings.twilio_account_sid,
            settings.twilio_api_key_sid,
            secret,
            identity=identity,
            ttl=settings.voice_token_seconds,
        )
        token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=settings.twilio_twiml_app_sid))
        body = VoiceToken(token=token.to_jwt(), identity=identity, expires_in=settings.voice_token_seconds)
        return web.json_response(body.model_dump(mode="json"))
