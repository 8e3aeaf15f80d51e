"""The chat visitor's WebSocket, `GET /chat/ws`.

The handshake checks the page's `Origin` (the service's own and `CC_ALLOWED_ORIGINS`) and the visitor's token
(`?token=`; none: a new visitor). The first frame is `welcome`: a renewed token and the transcript after the
widget's `?after=` (the last number it saw). A visitor's message is written to its transcript, handed to the
routers as an interaction (idempotency key: the visitor's own id for the message), acknowledged (`ack`) and sent
to each of the visitor's sockets. Messages reach a visitor's sockets through the same relay agents' notices take
(Redis pub/sub, one channel per visitor), wherever its sockets are; each socket sends them in their numbers'
order, each once, fetching from the transcript any it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import TypeAdapter, ValidationError

from channels import RateLimit, SocketNotices
from channels.intake.admission import Admission
from channels.intake.publishing import InteractionPublisher
from channels.webchat.frames import (
    VISITOR_FRAME,
    Acknowledged,
    AgentShown,
    ChatEntry,
    ChatError,
    ChatErrorDetail,
    CodeSent,
    EndChat,
    Ended,
    Identified,
    Identify,
    ProveEmail,
    RequestCode,
    SendMessage,
    Typing,
    Verified,
    VisitorFrames,
    Welcome,
)
from channels.webchat.hours import OpeningHours
from channels.webchat.tokens import VisitorTokens
from channels.webchat.transcript import PAGE, Transcript
from channels.webchat.verification import EmailProof
from contactcenter.agents.outbound import AgentActivity, Claims, CustomerPresencePort, StaffingPort
from contactcenter.answers import ANSWERED, SERVICE_ERRORS, answer_to, invalid_from
from contactcenter.api.operations import Answer, Operation, Parameter, failures
from contactcenter.errors import ContactCenterError, Forbidden, Invalid, Unavailable
from contactcenter.identities import normalise_email, normalise_phone
from contactcenter.logs import log_context
from contactcenter.origins import origin_of
from contactcenter.settings import Settings
from schema import Channel, IdentityKind, Interaction
from schema.offers import CustomerActivity

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
# Refusals in a row (rate, malformed frames) after which the socket is closed: a client that ignores its error
# frames is flooding, not chatting.
REFUSALS_BEFORE_CLOSING = 50
# What a visitor's interactions name as their recipient: the service's own chat.
OUR_ADDRESS = "webchat"
LEAVING_ERRORS: tuple[type[BaseException], ...] = (ContactCenterError, *SERVICE_ERRORS)

CONNECT = Operation(
    "GET",
    "/chat/ws",
    "connectVisitor",
    'A chat visitor\'s WebSocket (its frames are described in docs/api.md, "Web chat")',
    {
        101: Answer("the socket is open; the first frame is `welcome`"),
        **failures(
            400,
            403,
            503,
            reasons={
                400: "not a WebSocket handshake, or `after` is not a number",
                403: "a browser origin not allowed, or a token we did not issue (or expired)",
            },
        ),
    },
    parameters=(
        Parameter("token", "query", "the token of an earlier `welcome`: resumes that visitor's conversation"),
        Parameter(
            "after",
            "query",
            "the number of the last message the widget has: `welcome` carries those after it",
            schema={"type": "integer", "minimum": 0},
        ),
        Parameter("Origin", "header", "a browser's origin: the service's own or one of CC_ALLOWED_ORIGINS (else 403)"),
    ),
)

Notice = ChatEntry | Ended | AgentShown
_NOTICE: TypeAdapter[Notice] = TypeAdapter(Notice)


class VisitorSession:
    """One socket of a visitor (a visitor may have several: tabs). Sends are serialised; `seen` is the number
    of the last message this socket carried."""

    def __init__(self, visitor_id: uuid.UUID, socket: web.WebSocketResponse, seen: int) -> None:
        self.visitor_id = visitor_id
        self.socket = socket
        self.seen = seen
        self.refusals = 0
        self._lock = asyncio.Lock()
        # Messages heard before `welcome` is sent wait for it (they are deduplicated against its history).
        self._greeted = asyncio.Event()

    async def greet(self, welcome: Welcome | ChatError, transcript: Transcript) -> None:
        try:
            async with self._lock:
                await self._send(welcome.model_dump_json())
                if isinstance(welcome, Welcome) and welcome.history:
                    self.seen = welcome.history[-1].seq
                    if len(welcome.history) == PAGE:
                        await self._catch_up(transcript, None)
        finally:
            self._greeted.set()

    async def deliver(self, entry: ChatEntry, transcript: Transcript) -> None:
        """Send `entry` unless this socket carried it; first any this socket missed before it."""
        await self._greeted.wait()
        async with self._lock:
            if entry.seq <= self.seen:
                return
            if entry.seq > self.seen + 1:
                await self._catch_up(transcript, entry.seq)
            if entry.seq == self.seen + 1:
                await self._send(entry.model_dump_json())
                self.seen = entry.seq

    async def _catch_up(self, transcript: Transcript, before: int | None) -> None:
        while before is None or self.seen + 1 < before:
            missed = await transcript.after(self.visitor_id, self.seen)
            for entry in missed:
                if before is not None and entry.seq >= before:
                    return
                await self._send(entry.model_dump_json())
                self.seen = entry.seq
            if len(missed) < PAGE:
                return

    async def send(
        self, frame: Acknowledged | Identified | CodeSent | Verified | Ended | AgentShown | ChatError
    ) -> None:
        await self._greeted.wait()
        async with self._lock:
            await self._send(frame.model_dump_json())

    async def _send(self, text: str) -> None:
        if self.socket.closed:
            return
        try:
            await self.socket.send_str(text)
        except ConnectionResetError:
            log.info("a chat visitor left while a frame was on its way")


class VisitorSockets:
    OPERATIONS = (CONNECT,)

    def __init__(
        self,
        settings: Settings,
        *,
        tokens: VisitorTokens,
        transcript: Transcript,
        publisher: InteractionPublisher,
        admission: Admission,
        notices: SocketNotices,
        presence: CustomerPresencePort,
        staffing: StaffingPort,
        rate: RateLimit,
        proof: EmailProof,
        hours: OpeningHours | None,
        allowed_origins: frozenset[str],
    ) -> None:
        self._max_text = settings.chat_max_text
        self._default_region = settings.default_region
        self._tokens = tokens
        self._transcript = transcript
        self._publisher = publisher
        self._admission = admission
        self._notices = notices
        self._presence = presence
        self._staffing = staffing
        self._proof = proof
        self._hours = hours
        self._allowed_origins = allowed_origins
        self._rate = rate
        self._sessions: dict[uuid.UUID, set[VisitorSession]] = {}
        self._stopping = False

    @property
    def max_text(self) -> int:
        return self._max_text

    async def start(self) -> None:
        self._notices.listen(self.deliver_here)

    async def disconnect(self) -> None:
        """As soon as the service begins to stop: every socket closed with 1012 (service restart), so widgets
        reconnect to another process now rather than when this one's shutdown timeout has run out."""
        self._stopping = True
        sockets = [session.socket for sessions in list(self._sessions.values()) for session in list(sessions)]
        await asyncio.gather(*(_close_for_restart(socket) for socket in sockets))

    async def stop(self) -> None:
        await self.disconnect()  # none left when the service's shutdown ran first
        await self._notices.close()

    def routes(self) -> list[web.RouteDef]:
        return [CONNECT.route(self.connect)]

    async def connect(self, request: web.Request) -> web.WebSocketResponse:
        self._check_origin(request)
        visitor_id = self._visitor(request)
        after = _after(request)
        # A frame is bounded in bytes: the longest text, each character up to 4 bytes of UTF-8, and the rest.
        socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=self._max_text * 4 + 1024)
        await socket.prepare(request)
        if self._stopping:  # a handshake that was under way as the service began to stop
            await _close_for_restart(socket)
            return socket
        session = VisitorSession(visitor_id, socket, after)
        with log_context(visitor_id=visitor_id):
            try:
                await self._serve(session, after)
            finally:
                await self._close(session)
        return socket

    async def _serve(self, session: VisitorSession, after: int) -> None:
        visitor_id = session.visitor_id
        try:
            await self._open(session)
            # Read once the visitor's messages are heard: one written meanwhile is in it, or follows it.
            history = await self._transcript.after(visitor_id, after)
            ended = await self._transcript.ended(visitor_id)
            agents_available = await self._staffing.agents_available(Channel.CHAT)
        except LEAVING_ERRORS as exc:
            log.warning("a chat visitor could not be connected: %s", exc)
            detail = ChatErrorDetail(
                code=Unavailable.code, message="a service we depend on is unavailable; connect again"
            )
            await session.greet(ChatError(error=detail), self._transcript)
            await session.socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"try again later")
            return
        welcome = Welcome(
            token=self._tokens.issue(visitor_id),
            visitor_id=visitor_id,
            history=history,
            ended=ended,
            agents_available=agents_available,
            open_now=self._hours is None or self._hours.open_at(datetime.now(UTC)),
        )
        await session.greet(welcome, self._transcript)
        async for frame in session.socket:
            if frame.type is WSMsgType.TEXT:
                await self._answer(session, frame.data)
            elif frame.type is WSMsgType.BINARY:
                await self._refuse(session, Invalid("send JSON text frames"))

    def _check_origin(self, request: web.Request) -> None:
        """Browsers let any page open a WebSocket anywhere: only our own origin and the allow-list may. A client
        that is no browser sends no Origin, and is let through: its token is what it holds."""
        origin = request.headers.get("Origin")
        if origin is None or origin_of(origin) in self._allowed_origins:
            return
        raise Forbidden("this Origin may not open the chat socket (CC_ALLOWED_ORIGINS)", field="Origin")

    def _visitor(self, request: web.Request) -> uuid.UUID:
        token = request.query.get("token")
        if token is None or token == "":
            return uuid.uuid4()
        return self._tokens.visitor(token)

    async def _open(self, session: VisitorSession) -> None:
        sessions = self._sessions.get(session.visitor_id)
        if sessions is None:
            # Listened to before the session counts as held: a failed subscription leaves nothing behind.
            await self._notices.hold(session.visitor_id)
            sessions = self._sessions.setdefault(session.visitor_id, set())
        sessions.add(session)

    async def _close(self, session: VisitorSession) -> None:
        sessions = self._sessions.get(session.visitor_id)
        if sessions is None or session not in sessions:
            return
        sessions.discard(session)
        if sessions:
            return
        del self._sessions[session.visitor_id]
        try:
            await self._notices.release(session.visitor_id)
        except LEAVING_ERRORS as exc:
            log.warning("a chat visitor left, but the relay could not be told: %s", exc)

    async def deliver_here(self, visitor_id: uuid.UUID, body: bytes) -> bool:
        """Pass a notice to the visitor's sockets in this process; False when it holds none."""
        sessions = self._sessions.get(visitor_id)
        if not sessions:
            return False
        notice = _NOTICE.validate_json(body)
        for session in list(sessions):
            if isinstance(notice, ChatEntry):
                await session.deliver(notice, self._transcript)
            else:
                await session.send(notice)
        return True

    async def agent_activity(self, client_address: str, activity: AgentActivity, agent_name: str) -> None:
        """`ConversationParty`: the visitor's sockets show the agent joining, leaving, typing."""
        try:
            visitor_id = uuid.UUID(client_address)
        except ValueError:
            return  # not a visitor's conversation after all: nobody to show
        await self.tell_visitor(visitor_id, AgentShown(activity=activity.value, name=agent_name))
        if activity is AgentActivity.JOINED:
            # The agent who takes the chat sees what the visitor said it is before.
            claims = await self._transcript.claims(visitor_id)
            if claims != Claims():
                await self._presence.customer_claims(IdentityKind.VISITOR, client_address, Channel.CHAT, claims)

    async def tell_visitor(self, visitor_id: uuid.UUID, notice: Notice) -> None:
        """To every socket of the visitor, through the relay (this process hears it too, for the sockets it
        holds). A message goes to this process's sockets at once as well: they hear it twice and send it once,
        by its number; what has no number (presence, `ended`) goes through the relay alone."""
        body = notice.model_dump_json().encode()
        if isinstance(notice, ChatEntry):
            await self.deliver_here(visitor_id, body)
        await self._notices.send(visitor_id, body)

    async def _answer(self, session: VisitorSession, text: str) -> None:
        message_id: str | None = None
        try:
            if not await self._rate.take(str(session.visitor_id)):
                await self._refuse(session, Invalid("too many frames: slow down", field="type"), code="rate_limited")
                return
            frame = _frame_from(text)
            match frame:
                case SendMessage():
                    message_id = frame.id
                    await self._take_message(session, frame)
                case Identify():
                    await session.send(await self._take_claims(session.visitor_id, frame))
                case EndChat():
                    if await self._transcript.end(session.visitor_id):
                        await self.tell_visitor(session.visitor_id, Ended())
                        await self._tell_agent(session.visitor_id, CustomerActivity.ENDED)
                    else:
                        await session.send(Ended())
                case Typing():
                    await self._tell_agent(session.visitor_id, CustomerActivity.TYPING)
                case RequestCode():
                    await session.send(CodeSent(email=await self._proof.send_code(session.visitor_id)))
                case ProveEmail():
                    email = await self._proof.prove(session.visitor_id, frame.code)
                    await session.send(Verified(email=email))
                    claims = await self._transcript.claims(session.visitor_id)
                    await self._presence.customer_claims(
                        IdentityKind.VISITOR, str(session.visitor_id), Channel.CHAT, claims
                    )
            session.refusals = 0
        except ANSWERED as exc:
            await self._refuse(session, exc, message_id=message_id)
        except Exception:
            # A defect of ours: the visitor is told and its socket goes on; the log has the rest.
            log.exception("a chat visitor's frame could not be handled")
            detail = ChatErrorDetail(code="error", message="the frame could not be handled", id=message_id)
            await session.send(ChatError(error=detail))

    async def _tell_agent(self, visitor_id: uuid.UUID, activity: CustomerActivity) -> None:
        await self._presence.customer_activity(IdentityKind.VISITOR, str(visitor_id), Channel.CHAT, activity)

    async def _take_message(self, session: VisitorSession, frame: SendMessage) -> None:
        if len(frame.text) > self._max_text:
            raise Invalid(f"a message carries at most {self._max_text} characters", field="text")
        entry, _ = await self._transcript.append(session.visitor_id, "visitor", frame.id, frame.text)
        interaction = Interaction(
            channel=Channel.CHAT,
            # The visitor's id for its message, under its own (signed) id: a retry is stored once.
            provider_id=f"chat:{session.visitor_id}:{frame.id}",
            from_address=str(session.visitor_id),
            sender_kind=IdentityKind.VISITOR,
            to_address=OUR_ADDRESS,
            # The visitor id is ours, signed: the channel vouches for it (not for what the visitor claims).
            from_verified=True,
            body=entry.text,
            received_at=entry.sent_at,
        )
        with self._admission.slot(), log_context(interaction_id=interaction.id):
            await self._publisher.publish(interaction)
            log.info("chat message accepted: handed to the routers")
        await session.send(Acknowledged(id=entry.id, seq=entry.seq))
        await self.tell_visitor(session.visitor_id, entry)

    async def _take_claims(self, visitor_id: uuid.UUID, frame: Identify) -> Identified:
        """Keep what the visitor says it is and show it to the agent holding the chat: a claim, never merged."""
        claimed = Claims(
            name=frame.name.strip() or None if frame.name else None,
            email=normalise_email(frame.email) if frame.email else None,
            phone=normalise_phone(frame.phone, self._default_region, field="phone") if frame.phone else None,
        )
        claims = await self._transcript.claim(visitor_id, claimed)
        await self._presence.customer_claims(IdentityKind.VISITOR, str(visitor_id), Channel.CHAT, claims)
        return Identified(name=claims.name, email=claims.email, phone=claims.phone)

    async def _refuse(
        self, session: VisitorSession, exc: BaseException, *, code: str | None = None, message_id: str | None = None
    ) -> None:
        refusal = answer_to(exc)
        if refusal.logged:
            log.warning("chat visitor: %s", refusal.log_line)
        detail = ChatErrorDetail(code=code or refusal.code, message=refusal.message, field=refusal.field, id=message_id)
        await session.send(ChatError(error=detail))
        session.refusals += 1
        if session.refusals >= REFUSALS_BEFORE_CLOSING:
            await session.socket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many refused frames")


async def _close_for_restart(socket: web.WebSocketResponse) -> None:
    await socket.close(code=WSCloseCode.SERVICE_RESTART, message=b"service restarting: connect again")


def _frame_from(text: str) -> VisitorFrames:
    # Read by the standard library first: pydantic's reader refuses a lone surrogate (`"\ud800"`) as bad JSON,
    # where the model names the field that holds it.
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise Invalid("a frame is one JSON object with a `type`") from None
    try:
        return VISITOR_FRAME.validate_python(document)
    except ValidationError as exc:
        raise invalid_from(exc, tagged=True) from None


def _after(request: web.Request) -> int:
    raw = request.query.get("after", "0")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Invalid("after must be the number of a message (0 or more)", field="after")
    return int(raw)
