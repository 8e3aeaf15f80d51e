"""Voice through Twilio: the call's webhooks under `/channels/twilio/voice`.

A call is answered with its number's menu (`<Gather>`); the caller's choice (or, for a caller with an open
conversation, that conversation's queue) is stored, the call is published as an interaction (idempotency key
`CallSid`, channel `voice`) and only then answered with `<Enqueue>`, whose wait URL announces the caller's
place. Status callbacks move the call forward only; a caller who hangs up while waiting is an abandoned
interaction (its work withdrawn). Outside opening hours, past the queue's longest wait, or on the key for it,
the caller leaves a voicemail, which becomes a contact of its own (idempotency key `RecordingSid`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from channels.intake.admission import Admission
from channels.intake.publishing import InteractionPublisher
from channels.twilio.signature import (
    SIGNATURE_PARAMETER,
    WEBHOOK_FAILURES,
    TwilioSignature,
    required_field,
    twilio_form,
)
from channels.twilio.voice_connect import connect_agent, endpoint_of
from channels.twilio.voice_menu import chosen_option, is_open
from channels.twilio.voice_store import FINAL_RANK, STATUS_RANKS, VoiceStore
from channels.twilio.voice_twiml import (
    BASE,
    CALLBACK_KEY,
    CALLING_BACK,
    CLOSED,
    DEFAULT_MAX_WAIT_SECONDS,
    LEAVE_PATH,
    MENU_PATH,
    NOBODY_FREE,
    QUEUE_PATH,
    RECORDED_PATH,
    RECORDING_PATH,
    STATUS_PATH,
    TRANSCRIPTION_PATH,
    VOICEMAIL_KEY,
    WAIT_PATH,
    VoiceTwiml,
    dial,
)
from contactcenter.agents import AgentCallsPort, WithdrawalPort
from contactcenter.answers import invalid_from
from contactcenter.api.operations import Answer, Operation, Parameter
from contactcenter.errors import Invalid
from contactcenter.identities import normalise_phone
from contactcenter.logs import log_context
from contactcenter.metrics import IntakeMetrics
from contactcenter.settings import Settings
from schema import Channel, IdentityKind, Interaction
from schema.text import Identifier, storable
from schema.voice import VoiceMenu

log = logging.getLogger(__name__)

# The Twilio queue of a call whose number has no menu: the router puts its contact in the oldest voice queue.
DEFAULT_QUEUE = "contactcenter"
_FORM_FIELDS = {"provider_id": "CallSid", "from_address": "From", "to_address": "To", "body": "RecordingUrl"}
# The fields that are stored or published: identifiers (no control character, NUL included; bounded), checked
# before anything reaches PostgreSQL or the bus.
STORED_FIELDS = (
    "CallSid",
    "From",
    "To",
    "CallStatus",
    "QueueResult",
    "RecordingSid",
    "RecordingUrl",
    "TranscriptionSid",
)
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Annotated[Identifier, Field(max_length=320)])


class CallForm(BaseModel):
    """The fields of Twilio's call webhooks read here, for the API's document. Twilio sends many more (the
    caller's city, the API version, ...), all accepted as text."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]

    CallSid: str = Field(min_length=1, description="Twilio's id of the call: every webhook of the call carries it")
    From: str = ""
    To: str = ""
    CallStatus: str = ""
    Digits: str = Field(default="", description="menu: the key pressed")
    SpeechResult: str = Field(default="", description="menu: what the caller said")
    QueueResult: str = Field(default="", description="the queue's callback: why the caller left it")
    QueuePosition: str = Field(default="", description="wait URL: the caller's place")
    QueueTime: str = Field(default="", description="wait URL: seconds waited")
    CallDuration: str = Field(default="", description="status callback: seconds the call lasted")
    RecordingSid: str = Field(default="", description="recording callback: the voicemail's id")
    RecordingUrl: str = ""
    RecordingStatus: str = ""
    RecordingDuration: str = ""
    TranscriptionSid: str = Field(default="", description="transcription callback: the transcription's id")
    TranscriptionText: str = ""
    TranscriptionStatus: str = ""


def _operation(path: str, operation_id: str, summary: str, query: tuple[Parameter, ...] = ()) -> Operation:
    return Operation(
        "POST",
        path,
        operation_id,
        summary,
        {
            200: Answer("TwiML for the call", media_type="text/xml", schema={"type": "string"}),
            **WEBHOOK_FAILURES,
        },
        body=CallForm,
        body_media_type="application/x-www-form-urlencoded",
        parameters=(SIGNATURE_PARAMETER, *query),
    )


# Rounds of the menu a caller hears without choosing (silence, or keys that are no option); then the call goes
# to the oldest queue that serves voice, as a call to a number without a menu does.
MENU_ROUNDS = 3
_ROUND = Parameter("round", "query", "which round of the menu this is (1 the first; set by our own TwiML)")
_MAX_WAIT = Parameter("max_wait", "query", "the queue's longest wait in seconds, set where the call was queued")
_PLACED = Parameter("placed", "query", "1: a call the service placed (set on its own status callback URL)")
RECEIVE = _operation(BASE, "receiveCall", "Twilio's inbound-call webhook: the number's menu, or the queue", (_ROUND,))
MENU = _operation(
    MENU_PATH, "answerCallMenu", "The menu's answer (Digits or SpeechResult): a queue, or the menu again", (_ROUND,)
)
WAIT = _operation(WAIT_PATH, "announceCallWait", "The wait URL: the caller's place, again and again", (_MAX_WAIT,))
LEAVE = _operation(LEAVE_PATH, "leaveCallQueue", "A key pressed while waiting: star leaves for voicemail", (_MAX_WAIT,))
QUEUE = _operation(QUEUE_PATH, "callLeftQueue", "The queue's own callback: a hang-up while waiting is an abandon")
STATUS = _operation(STATUS_PATH, "callStatus", "The call's status callback: state only moves forward", (_PLACED,))
RECORDED = _operation(RECORDED_PATH, "voicemailRecorded", "The voicemail's end: thanks and goodbye")
RECORDING = _operation(RECORDING_PATH, "voicemailReady", "The recording's status callback: the voicemail is a contact")
TRANSCRIPTION = _operation(
    TRANSCRIPTION_PATH, "voicemailTranscribed", "The voicemail's transcription: on the card, beside the recording"
)


def _check_identifiers(form: Mapping[str, str]) -> None:
    for field in STORED_FIELDS:
        try:
            _IDENTIFIER.validate_python(form.get(field, ""))
        except ValidationError:
            raise Invalid(
                f"the form field {field} holds a control character or is over 320 characters", field=field
            ) from None


def _number(form: Mapping[str, str], field: str, *, default: int | None = None) -> int | None:
    value = form.get(field, "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise Invalid(f"the form field {field} must be a whole number of seconds or places", field=field)
    return int(value)


def _menu_round(request: web.Request) -> int:
    return _number(request.query, "round", default=1) or 1


def _max_wait(request: web.Request) -> int:
    value = _number(request.query, "max_wait", default=DEFAULT_MAX_WAIT_SECONDS)
    return value if value is not None else DEFAULT_MAX_WAIT_SECONDS


def call_interaction(form: Mapping[str, str], default_region: str, *, provider_id: str, body: str) -> Interaction:
    """The contact a call (or its voicemail) is. The caller's number comes from the carrier."""
    try:
        interaction = Interaction(
            channel=Channel.VOICE,
            provider_id=provider_id,
            from_address=required_field(form, "From"),
            sender_kind=IdentityKind.PHONE,
            to_address=form.get("To", ""),
            from_verified=True,
            body=body,
            received_at=datetime.now(UTC),
        )
    except ValidationError as exc:
        raise invalid_from(exc, names=_FORM_FIELDS) from None
    normalise_phone(interaction.from_address, default_region)  # refuse what the router could never resolve
    return interaction


Handler = Callable[[web.Request, Mapping[str, str]], Awaitable[str]]


class VoiceWebhook:
    OPERATIONS = (RECEIVE, MENU, WAIT, LEAVE, QUEUE, STATUS, RECORDED, RECORDING, TRANSCRIPTION)

    def __init__(
        self,
        settings: Settings,
        store: VoiceStore,
        publisher: InteractionPublisher,
        admission: Admission,
        metrics: IntakeMetrics,
        withdrawals: WithdrawalPort,
        calls: AgentCallsPort,
    ) -> None:
        self._region = settings.default_region
        self._signature = TwilioSignature(settings.twilio_auth_token.get_secret_value(), settings.public_url)
        self._twiml = VoiceTwiml(settings.public_url)
        self._store = store
        self._publisher = publisher
        self._admission = admission
        self._metrics = metrics
        self._withdrawals = withdrawals
        self._calls = calls

    def routes(self) -> list[web.RouteDef]:
        handlers: list[tuple[Operation, Handler]] = [
            (RECEIVE, self.receive),
            (MENU, self.menu_answer),
            (WAIT, self.wait),
            (LEAVE, self.leave),
            (QUEUE, self.left_queue),
            (STATUS, self.status),
            (RECORDED, self.recorded),
            (RECORDING, self.recording),
            (TRANSCRIPTION, self.transcription),
        ]
        return [operation.route(self._signed(handler)) for operation, handler in handlers]

    def _signed(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Every voice webhook: the form read and its signature checked, the CallSid required, TwiML answered."""

        async def answer(request: web.Request) -> web.Response:
            with self._metrics.webhook(Channel.VOICE):
                form = await twilio_form(request)
                self._signature.verify(request, form)
                call_sid = required_field(form, "CallSid")
                _check_identifiers(form)
                with log_context(provider_id=call_sid):
                    twiml = await handler(request, form)
            return web.Response(text=twiml, content_type="text/xml")

        return answer

    async def receive(self, request: web.Request, form: Mapping[str, str]) -> str:
        call_sid, caller = form["CallSid"].strip(), required_field(form, "From")
        caller_e164 = normalise_phone(caller, self._region)
        await self._store.call_arrived(call_sid, caller_e164, form.get("To", ""), form.get("CallStatus", "ringing"))
        menu = await self._menu_of(form)
        if menu is not None and not is_open(menu, datetime.now(UTC)):
            return self._twiml.voicemail(CLOSED)
        known = await self._store.open_conversation_of_caller(caller_e164)
        if known is not None and known.agent_id is not None:
            return await self._to_holder(form, known.agent_id)
        if known is not None:
            return await self._enqueue(form, known.queue_name, menu, body="Phone call (open conversation)")
        if menu is None or not menu.options:
            return await self._enqueue(form, None, menu, body="Phone call")
        menu_round = _menu_round(request)
        if menu_round > MENU_ROUNDS:
            return await self._enqueue(form, None, menu, body="Phone call: no choice in the menu")
        return self._twiml.menu(menu, menu_round=menu_round)

    async def menu_answer(self, request: web.Request, form: Mapping[str, str]) -> str:
        menu = await self._menu_of(form)
        if menu is None:
            return await self._enqueue(form, None, menu, body="Phone call")
        option = chosen_option(menu, form.get("Digits", ""), form.get("SpeechResult", ""))
        if option is None:
            menu_round = _menu_round(request) + 1
            if menu_round > MENU_ROUNDS:
                return await self._enqueue(form, None, menu, body="Phone call: no choice in the menu")
            return self._twiml.menu(menu, menu_round=menu_round, again=True)
        return await self._enqueue(form, option.queue, menu, body=f"Phone call: chose {option.queue}")

    async def wait(self, request: web.Request, form: Mapping[str, str]) -> str:
        position = _number(form, "QueuePosition", default=1) or 1
        waited = _number(form, "QueueTime", default=0) or 0
        return self._twiml.waiting(position, past_max_wait=waited >= _max_wait(request))

    async def leave(self, request: web.Request, form: Mapping[str, str]) -> str:
        key = form.get("Digits", "").strip()
        if key == VOICEMAIL_KEY:
            return self._twiml.leave()
        if key == CALLBACK_KEY:
            return await self._callback(form)
        return self._twiml.waiting(1, past_max_wait=False)

    async def _callback(self, form: Mapping[str, str]) -> str:
        """The caller asks to be called back: it hangs up, its work keeps its place in the queue (no abandon), and
        the card says so; the agent who accepts it is called, then the caller (`CallConnector`)."""
        call_sid = form["CallSid"].strip()
        call = await self._store.callback_requested(call_sid)
        if call is None:
            return self._twiml.empty()
        body = f"Callback requested to {call.from_number} (kept its place in the queue)"
        caller = {"From": call.from_number, "To": call.to_number}
        await self._publish(call_interaction(caller, self._region, provider_id=f"{call_sid}:callback", body=body))
        return self._twiml.goodbye(CALLING_BACK)

    async def left_queue(self, request: web.Request, form: Mapping[str, str]) -> str:
        call_sid, result = form["CallSid"].strip(), form.get("QueueResult", "")
        if result == "hangup":
            await self._ended(call_sid, "completed", None)
            return self._twiml.empty()
        if result in ("bridged", "redirected"):
            return self._twiml.empty()  # connected to an agent (the REST call that did it recorded it)
        # The caller left for voicemail (the key, or the queue's longest wait), or Twilio could not queue it.
        await self._store.call_left_queue(call_sid)
        await self._withdrawals.withdraw(Channel.VOICE, call_sid, abandoned=False)
        return self._twiml.voicemail(NOBODY_FREE)

    async def status(self, request: web.Request, form: Mapping[str, str]) -> str:
        call_sid, status = form["CallSid"].strip(), form.get("CallStatus", "").strip()
        if request.query.get("placed") == "1" and STATUS_RANKS.get(status, 0) >= FINAL_RANK:
            # A call we placed may end before the REST answer that named it is recorded: known from now on, its
            # end is kept, and the recording of the placement finds it (the agent is then left free).
            await self._store.placed_call_seen(call_sid)
        await self._ended(call_sid, status, _number(form, "CallDuration"))
        return self._twiml.empty()

    async def recorded(self, request: web.Request, form: Mapping[str, str]) -> str:
        return self._twiml.goodbye()

    async def recording(self, request: web.Request, form: Mapping[str, str]) -> str:
        call_sid = form["CallSid"].strip()
        recording_sid = required_field(form, "RecordingSid")
        if form.get("RecordingStatus", "completed") != "completed":
            return self._twiml.empty()
        call = await self._store.call(call_sid)
        if call is None:
            log.info("a recording of a call we do not know: ignored")
            return self._twiml.empty()
        duration = _number(form, "RecordingDuration")
        body = f"Voicemail ({duration if duration is not None else '?'} s): {form.get('RecordingUrl', '')}"
        caller = {"From": call.from_number, "To": call.to_number}
        interaction = call_interaction(caller, self._region, provider_id=recording_sid, body=body)
        await self._publish(interaction)
        await self._store.voicemail_received(call_sid, recording_sid, duration)
        return self._twiml.empty()

    async def transcription(self, request: web.Request, form: Mapping[str, str]) -> str:
        """The voicemail's words, when Twilio transcribed them: a contact of their own (idempotency key
        `TranscriptionSid`), in the voicemail's conversation, on the card."""
        transcription_sid = required_field(form, "TranscriptionSid")
        call = await self._store.call(form["CallSid"].strip())
        if call is None or form.get("TranscriptionStatus", "completed") != "completed":
            return self._twiml.empty()
        body = f"Voicemail transcription: {storable(form.get('TranscriptionText', ''))}"
        caller = {"From": call.from_number, "To": call.to_number}
        await self._publish(call_interaction(caller, self._region, provider_id=transcription_sid, body=body))
        return self._twiml.empty()

    async def _ended(self, call_sid: str, status: str, duration: int | None) -> None:
        """Move the call to `status` (only forward; an unknown call is ignored). A caller who hung up while
        waiting is an abandon: its work is withdrawn (an offer revoked, the agent freed) — or, when the router has
        not recorded the call yet, the recording finds the abandon (the departure `call_status` stores) and queues
        nothing. A final status frees the
        agent the call occupied — every time it comes, after PostgreSQL has it, so a connection recorded at that
        moment sees the end (`CallConnector`) and a retry after a failure frees the agent still."""
        call = await self._store.call(call_sid)
        if call is None:
            log.info("a status of a call we do not know: ignored")
            return
        if await self._store.call_status(call_sid, status, duration):
            withdrawn = await self._withdrawals.withdraw(Channel.VOICE, call_sid, abandoned=True)
            log.info("call abandoned while waiting", extra={"withdrawn": withdrawn is not None})
        elif call.abandoned:
            # Again (Twilio's retry, or another callback): the withdrawal may have failed after the abandon was
            # stored; once done, it finds nothing and changes nothing.
            await self._withdrawals.withdraw(Channel.VOICE, call_sid, abandoned=True)
        if STATUS_RANKS.get(status, 0) >= FINAL_RANK:
            await self._calls.ended(call_sid)

    async def _menu_of(self, form: Mapping[str, str]) -> VoiceMenu | None:
        to = form.get("To", "").strip()
        if not to:
            return None
        try:
            number = normalise_phone(to, self._region, field="To")
        except Invalid:
            return None  # a SIP address or a client: no menu is kept for one
        return await self._store.menu(number)

    async def _to_holder(self, form: Mapping[str, str], agent_id: uuid.UUID) -> str:
        """A caller whose call an agent holds (an open voice conversation): published (the agent is told, as of
        any contact in a conversation it holds), then rung straight through to that agent."""
        call_sid = form["CallSid"].strip()
        await self._publish(
            call_interaction(form, self._region, provider_id=call_sid, body="Phone call (to its agent)")
        )
        await connect_agent(self._store, self._calls, call_sid, agent_id)
        return dial(await endpoint_of(self._store, agent_id))

    async def _enqueue(self, form: Mapping[str, str], queue: str | None, menu: VoiceMenu | None, *, body: str) -> str:
        """Store the choice, publish the call, and only then answer Twilio with the queue."""
        call_sid = form["CallSid"].strip()
        interaction = call_interaction(form, self._region, provider_id=call_sid, body=body)
        twilio_queue = queue or DEFAULT_QUEUE
        await self._store.call_enqueued(call_sid, queue)
        await self._publish(interaction)
        max_wait = menu.max_wait_seconds if menu is not None else DEFAULT_MAX_WAIT_SECONDS
        return self._twiml.enqueue(twilio_queue, max_wait_seconds=max_wait)

    async def _publish(self, interaction: Interaction) -> None:
        with self._admission.slot(), log_context(interaction_id=interaction.id):
            with self._metrics.publishing(Channel.VOICE):
                await self._publisher.publish(interaction)
            log.info("call accepted: handed to the routers")
