"""The agent desktop WebSocket, `GET /api/v1/agents/ws`.

Each connected agent holds one socket here. Notices for an agent (offers, messages, revocations) reach
this process through the relay (`agents.relay`), which it listens to for the agents it holds, so several
gateway processes can run behind a load balancer. Commands from the desktop change live state and the
database, and are answered on the socket; a malformed command gets an error message, never a dropped
connection.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from contactcenter.agents import AnswerPort, Arrival, Placement, PlacementPort
from contactcenter.agents.notices import AgentNotices
from contactcenter.agents.outbound import AgentActivity, ConversationParty
from contactcenter.agents.relay import NoticeRelay
from contactcenter.agents.replies import Replies
from contactcenter.answers import ANSWERED, SERVICE_ERRORS, ErrorAnswer, answer_to, invalid_from
from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.clock import now_ms
from contactcenter.errors import ContactCenterError, Forbidden, Invalid, NotFound, Unavailable
from contactcenter.live import AgentLine, LiveChanges
from contactcenter.live.state import LiveState
from contactcenter.logs import log_context
from contactcenter.origins import origin_of
from contactcenter.store.conversations import Conversations
from contactcenter.store.directory import AgentProfile
from contactcenter.store.transfers import ConversationTransfers
from schema import Channel
from schema.desktop import (
    AGENT_COMMAND,
    AcceptCommand,
    Accepted,
    AgentCommand,
    AgentState,
    AgentView,
    CommandAnswer,
    CompleteCommand,
    Completed,
    ErrorFrame,
    RejectCommand,
    Rejected,
    Replied,
    ReplyCommand,
    SocketErrorDetail,
    StateChanged,
    StateCommand,
    TransferCommand,
    Transferred,
    TypingCommand,
    hello_json,
)
from schema.offers import CALL_NOTICE_HEAD, CallNotice, CallState, notice_ids, offered_reservation

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
LEAVING_ERRORS: tuple[type[BaseException], ...] = (ContactCenterError, *SERVICE_ERRORS)
HEARTBEAT_SECONDS = 20.0
# Far more than the offers one shift brings to one socket; only a redelivery's repeat needs remembering.
OFFERS_REMEMBERED = 4096

CONNECT = Operation(
    "GET",
    "/api/v1/agents/ws",
    "connectAgent",
    "The agent desktop's WebSocket (its messages are described in docs/api.md)",
    {
        101: Answer("the socket is open"),
        **failures(400, 401, 403, 503, reasons={400: "not a WebSocket handshake", 403: "a browser origin not allowed"}),
    },
    access=Access.AGENT,
    parameters=(
        Parameter("token", "query", "the agent's token, for browsers, which cannot set headers on a WebSocket"),
        Parameter("Origin", "header", "a browser's origin: the service's own or one of CC_ALLOWED_ORIGINS (else 403)"),
        Parameter(
            "calls",
            "query",
            "`true`: the desktop shows the phone, and is sent the state of the call on the agent's line (`call`)",
            schema={"type": "string", "enum": ["true", "false"]},
        ),
    ),
)


class AgentSession:
    """One agent's socket; sends are serialised so frames from the bus and from commands never interleave."""

    def __init__(self, agent: AgentProfile, socket: web.WebSocketResponse, *, follows_calls: bool = False) -> None:
        self.agent = agent
        self.socket = socket
        # The desktop shows the phone (`?calls=true`): it is sent call notices, which others are spared.
        self.follows_calls = follows_calls
        # What the agent last asked to be; restored if Redis loses live state while the agent is connected.
        self.state = AgentState.OFFLINE
        self._send_lock = asyncio.Lock()
        # Notices are heard from before `hello` is read (so none falls between the two): they wait for it.
        self._greeted = asyncio.Event()
        # The reservations offered on this socket, latest last: a router that takes over a contact whose offer
        # it cannot know was told (a redelivery) offers it once more, maybe after the agent accepted it here.
        self._offered: collections.OrderedDict[str, None] = collections.OrderedDict()

    def first_offer(self, reservation_id: str) -> bool:
        """Whether this socket has not yet been offered this reservation; remembers it from now on."""
        if reservation_id in self._offered:
            return False
        self._offered[reservation_id] = None
        if len(self._offered) > OFFERS_REMEMBERED:
            self._offered.popitem(last=False)
        return True

    async def greet(self, message: CommandAnswer | str) -> None:
        """Send the first frame (`hello`, or the error that turns the agent away); what waited follows it."""
        try:
            await self._send(message)
        finally:
            self.stop_waiting()

    def stop_waiting(self) -> None:
        self._greeted.set()

    async def send(self, message: CommandAnswer | str) -> None:
        """Send after the greeting, unless the agent has gone: a socket closing under us is the agent leaving,
        not an error."""
        await self._greeted.wait()
        await self._send(message)

    async def _send(self, message: CommandAnswer | str) -> None:
        text = message if isinstance(message, str) else message.model_dump_json()
        async with self._send_lock:
            if self.socket.closed:
                return
            try:
                await self.socket.send_str(text)
            except ConnectionResetError:
                log.info("agent %s left while a message was on its way", self.agent.id)


class AgentGateway:
    OPERATIONS = (CONNECT,)

    def __init__(
        self,
        *,
        relay: NoticeRelay,
        auth: Authenticator,
        live: LiveState,
        conversations: Conversations,
        notices: AgentNotices,
        placement: PlacementPort,
        replies: Replies,
        transfers: ConversationTransfers,
        allowed_origins: frozenset[str],
        answerers: Mapping[Channel, AnswerPort] | None = None,
        parties: Mapping[Channel, ConversationParty] | None = None,
        wrap_up_seconds: int = 0,
    ) -> None:
        self._relay = relay
        self._auth = auth
        self._live = live
        self._conversations = conversations
        self._notices = notices
        self._placement = placement
        self._replies = replies
        self._transfers = transfers
        self._allowed_origins = allowed_origins
        self._wrap_up_ms = wrap_up_seconds * 1000  # for conversations whose queue sets no wrap-up time of its own
        # What each channel does on the provider's side when an agent accepts its contact (connect a call).
        self._answerers = dict(answerers or {})
        # Channels whose customers see the agent join, leave and type (web chat).
        self._parties = dict(parties or {})
        self._party_channels = [str(channel) for channel in self._parties]
        self._sessions: dict[uuid.UUID, AgentSession] = {}
        # The live-state rebuild whose aftermath this gateway has seen to (`restore_lost_states`).
        self._seen_rebuild: str | None = None
        self._stopping = False

    def start(self) -> None:
        self._relay.listen(self.deliver_here)
        self._notices.deliver_locally_through(self)

    async def restore_lost_states(self) -> None:
        """After Redis lost live state, connected agents would never be offered work again: tell it anew
        what each one last asked to be — once the routers have put back the work agents hold, so that an
        agent busy with accepted work is not booked again. One round trip when nothing was lost."""
        rebuild = await self._live.rebuilt()
        if rebuild is None or rebuild == self._seen_rebuild:
            return
        sessions = [session for session in self._sessions.values() if session.state is not AgentState.OFFLINE]
        statuses = await self._live.agent_statuses([session.agent.id for session in sessions])
        for session, status in zip(sessions, statuses, strict=True):
            if status.state == AgentState.OFFLINE and self._sessions.get(session.agent.id) is session:
                log.warning("live state forgot agent %s; restoring it as %s", session.agent.id, session.state)
                changes = await self._live.set_agent_state(
                    session.agent.id, session.state, session.agent.queue_ids, now_ms()
                )
                await self._notices.announce(changes)
        self._seen_rebuild = rebuild

    async def stop(self) -> None:
        """As soon as the service begins to stop: every socket closed with 1012 (service restart), so desktops
        reconnect to another process now rather than when this one's shutdown timeout has run out. Each socket's
        handler then sets its agent offline as any leaving agent (its accepted work stays its own)."""
        self._stopping = True
        await asyncio.gather(*(_close_for_restart(session.socket) for session in list(self._sessions.values())))

    def routes(self) -> list[web.RouteDef]:
        return [CONNECT.route(self.connect)]

    async def connect(self, request: web.Request) -> web.WebSocketResponse:
        self._check_origin(request)
        agent = await self._auth.require_agent(request, allow_query=True)
        follows_calls = _follows_calls(request)
        with log_context(agent_id=agent.id):
            return await self._serve(request, agent, follows_calls)

    async def _serve(self, request: web.Request, agent: AgentProfile, follows_calls: bool) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
        await socket.prepare(request)
        if self._stopping:  # a handshake that was under way as the service began to stop
            await _close_for_restart(socket)
            return socket
        session = AgentSession(agent, socket, follows_calls=follows_calls)
        try:
            try:
                await self._open(session)
                # Read once the agent's notices are heard: a message recorded meanwhile is in it, or follows it.
                held = await self._conversations.held_by(agent.id)
                line = await self._live.agent_line(agent.id)
            except LEAVING_ERRORS as exc:
                # The socket is open already: the desktop hears why on it, and reconnects (1013: try again later).
                log.warning("agent %s could not be connected: %s", agent.id, exc)
                await session.greet(
                    _error_frame(Unavailable.code, "a service we depend on is unavailable; connect again")
                )
                await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"try again later")
                return socket
            await session.greet(hello_json(AgentView(id=agent.id, name=agent.name), held))
            await _tell_line(session, line)
            async for frame in socket:
                if frame.type is WSMsgType.TEXT:
                    await self._answer(session, frame.data)
                elif frame.type is WSMsgType.BINARY:
                    await session.send(_error_frame("invalid", "send JSON text frames"))
        finally:
            session.stop_waiting()
            await self._close(session)
        return socket

    def _check_origin(self, request: web.Request) -> None:
        """Browsers let any page open a WebSocket anywhere: only our own origin and the allow-list may (see
        `contactcenter.origins`). A desktop that is no browser sends no Origin, and is let through."""
        origin = request.headers.get("Origin")
        if origin is None or origin_of(origin) in self._allowed_origins:
            return
        raise Forbidden("this Origin may not open the agent socket (CC_ALLOWED_ORIGINS)", field="Origin")

    async def _open(self, session: AgentSession) -> None:
        agent_id = session.agent.id
        if agent_id not in self._sessions:
            # Listened to before the session counts as held: a subscription that fails leaves nothing behind,
            # and the agent's next connection subscribes again (a held session means the relay hears the agent).
            await self._relay.hold(agent_id)
        previous = self._sessions.get(agent_id)
        self._sessions[agent_id] = session
        if previous is not None:
            await previous.socket.close(code=4000, message=b"replaced by a newer connection")
        log.info("agent %s connected", agent_id)

    async def _close(self, session: AgentSession) -> None:
        agent_id = session.agent.id
        if self._sessions.get(agent_id) is not session:
            return  # replaced: the newer socket carries on
        del self._sessions[agent_id]
        try:
            await self._relay.release(agent_id)
        except LEAVING_ERRORS as exc:
            # Heard on, the agent's notices find no socket here and are dropped.
            log.warning("agent %s left, but the relay could not be told: %s", agent_id, exc)
        try:
            changes = await self._live.set_agent_state(agent_id, AgentState.OFFLINE, session.agent.queue_ids, now_ms())
            await self._notices.announce(changes)
        except LEAVING_ERRORS as exc:
            log.warning("agent %s left, but its state could not be cleared: %s", agent_id, exc)
        log.info("agent %s disconnected", agent_id)

    async def deliver_here(self, agent_id: uuid.UUID, body: bytes) -> bool:
        session = self._sessions.get(agent_id)
        if session is None:
            return False
        # Passed on as written (a `schema.offers` notice): no need to parse the whole card here. An agent that
        # left misses it: an unanswered offer expires and goes back to the queue, a message is in the next
        # `hello`. A session still being greeted holds this up for as long as reading what its agent holds.
        if body.startswith(CALL_NOTICE_HEAD) and not session.follows_calls:
            return True  # a desktop that leaves the phone to a softphone is not sent its calls
        reservation_id = offered_reservation(body)
        if reservation_id is not None and not session.first_offer(reservation_id):
            log.info("reservation %s was offered on this socket already: not again", reservation_id)
            return True
        if not log.isEnabledFor(logging.INFO):
            # Finding the ids in the notice is only for that line: every offer passes here (the bench runs at
            # WARNING, as a busy production may).
            await session.send(body.decode())
            return True
        with log_context(agent_id=agent_id, **notice_ids(body)):
            await session.send(body.decode())
            log.info("notice passed to the agent's socket")
        return True

    async def _answer(self, session: AgentSession, text: str) -> None:
        try:
            command = _command_from(text)
            answer, done = await self._perform(session.agent, command)
            # The answer goes out before any offer the change set in motion, so a desktop sees them in order.
            if answer is not None:
                await session.send(answer)
            # The customer is shown the agent joining or leaving once the desktop has its answer.
            if isinstance(answer, Accepted):
                await self._tell_party(answer.conversation_id, session.agent, AgentActivity.JOINED, done.channel)
            elif isinstance(answer, Completed):
                await self._tell_party(answer.conversation_id, session.agent, AgentActivity.LEFT, done.channel)
            await self._notices.announce(done.changes)
        except ANSWERED as exc:
            refusal = answer_to(exc)
            if refusal.logged:
                log.warning("agent %s: %s", session.agent.id, refusal.log_line)
            await session.send(_refusal_frame(refusal))

    async def _perform(self, agent: AgentProfile, command: AgentCommand) -> tuple[CommandAnswer | None, _Performed]:
        match command:
            case StateCommand(state=state):
                changes = await self._live.set_agent_state(agent.id, state, agent.queue_ids, now_ms())
                self._sessions[agent.id].state = state
                return StateChanged(state=state), _Performed(changes)
            case AcceptCommand(reservation_id=reservation_id):
                reservation = await self._live.accept(agent.id, reservation_id, now_ms())
                try:
                    channel = await self._conversations.assign(reservation.conversation_id, agent.id)
                except NotFound as exc:
                    # Closed meanwhile: a router queued its work from a read taken just before the agent who
                    # had it wrapped it up. Nobody can work on it, so the agent does not keep it; the contact
                    # the work was for, which no agent saw, is routed again.
                    log.warning(
                        "agent %s accepted conversation %s, closed meanwhile", agent.id, reservation.conversation_id
                    )
                    freed = await self._live.complete(agent.id, reservation.conversation_id, now_ms(), worked=False)
                    queued = await self._route_again(reservation.interaction_id)
                    changes = LiveChanges(freed.offers + queued.offers, freed.revoked + queued.revoked)
                    return _refusal_frame(answer_to(exc)), _Performed(changes)
                with log_context(
                    interaction_id=reservation.interaction_id,
                    conversation_id=reservation.conversation_id,
                    reservation_id=reservation_id,
                ):
                    log.info("agent accepted the offer")
                    await self._answer_on_channel(agent.id, reservation.interaction_id, channel)
                accepted = Accepted(reservation_id=reservation_id, conversation_id=reservation.conversation_id)
                return accepted, _Performed(channel=channel)
            case RejectCommand(reservation_id=reservation_id):
                changes = await self._live.reject(agent.id, reservation_id, now_ms())
                return Rejected(reservation_id=reservation_id), _Performed(changes)
            case CompleteCommand(conversation_id=conversation_id):
                closed = await self._conversations.close(conversation_id, agent.id)
                wrap_up_ms = self._wrap_up_ms if closed.wrap_up_seconds is None else closed.wrap_up_seconds * 1000
                changes = await self._live.complete(agent.id, conversation_id, now_ms(), wrap_up_ms=wrap_up_ms)
                return Completed(conversation_id=conversation_id), _Performed(changes, closed.channel)
            case TransferCommand(conversation_id=conversation_id, queue=queue):
                return await self._transfer(agent, conversation_id, queue)
            case ReplyCommand(conversation_id=conversation_id, text=text):
                interaction = await self._replies.reply(agent.id, conversation_id, text)
                return Replied(conversation_id=conversation_id, interaction=interaction), _Performed()
            case TypingCommand(conversation_id=conversation_id):
                await self._tell_party(conversation_id, agent, AgentActivity.TYPING)
                return None, _Performed()
        raise AssertionError(f"unhandled command {command!r}")

    async def _transfer(
        self, agent: AgentProfile, conversation_id: uuid.UUID, queue: str
    ) -> tuple[CommandAnswer, _Performed]:
        """The channel undoes what the accept did on the provider's side first (a call goes back to waiting; when
        the provider cannot be told, nothing moved); then live state hands the work over (it knows for certain
        who holds it, and offers it at once); the customer is shown the agent leaving; then PostgreSQL records it
        with `conversation.transferred`."""
        handoff = await self._transfers.check(agent.id, conversation_id, queue)
        answerer = self._answerers.get(handoff.channel)
        if answerer is not None:
            await answerer.handed_off(agent.id, conversation_id, queue)
        previous, changes = await self._live.transfer(agent.id, conversation_id, handoff.queue_id, now_ms())
        await self._tell_party(conversation_id, agent, AgentActivity.LEFT, handoff.channel)
        with log_context(conversation_id=conversation_id):
            try:
                recorded = await self._transfers.record(agent.id, conversation_id, handoff.queue_id)
            except LEAVING_ERRORS as exc:
                # The work has moved: its offer must still be told (an agent never told would hold it until it
                # expired). PostgreSQL names the agent until the next one's accept gives it the conversation.
                log.warning("agent transferred the conversation; PostgreSQL could not record it: %s", exc)
            else:
                if recorded:
                    log.info("agent transferred the conversation from queue %s to %s", previous, handoff.queue_id)
                else:
                    log.warning("agent transferred the conversation, which PostgreSQL no longer gave it")
        return Transferred(conversation_id=conversation_id, queue=queue), _Performed(changes)

    async def _answer_on_channel(self, agent_id: uuid.UUID, interaction_id: uuid.UUID, channel: Channel) -> None:
        """Tell the contact's channel (its conversation's) that the agent took it (a call is connected to the
        agent); nothing to read when the channel does nothing then. A failure is the desktop's to hear:
        accepting again reaches here again, and the channel acts once."""
        answerer = self._answerers.get(channel)
        if answerer is None:
            return
        interaction = await self._conversations.interaction_alone(interaction_id)
        await answerer.answered(agent_id, interaction)

    async def _tell_party(
        self, conversation_id: uuid.UUID, agent: AgentProfile, activity: AgentActivity, channel: Channel | None = None
    ) -> None:
        """Show the customer what the agent did, on a channel with a live presence; one lookup by primary key
        (none while no channel has one, nor when the conversation's `channel`, known, has none). What the agent
        did stands whether or not the customer is told."""
        if not self._parties or (channel is not None and channel not in self._parties):
            return
        try:
            route = await self._conversations.party_route(conversation_id, agent.id, self._party_channels)
            if route is not None:
                await self._parties[route.channel].agent_activity(route.client_address, activity, agent.name)
        except LEAVING_ERRORS as exc:
            log.warning(
                "the customer of conversation %s could not be shown the agent %s: %s", conversation_id, activity, exc
            )

    async def _route_again(self, interaction_id: uuid.UUID) -> LiveChanges:
        """An inbound contact left in a conversation closed before any agent saw it: in the client's open
        conversation (its agent is told) or a new one, queued as a new contact would be."""
        moved = await self._conversations.rehome_inbound(interaction_id)
        if moved is None:
            return LiveChanges()
        arrival = Arrival(interaction_id, moved.conversation_id, moved.queue_id, moved.agent_id)
        placed = await self._placement.place(arrival)
        if placed.placement is Placement.UNROUTED:
            log.warning("no queue serves interaction %s any more: it waits unrouted", interaction_id)
        return placed.changes


async def _close_for_restart(socket: web.WebSocketResponse) -> None:
    await socket.close(code=WSCloseCode.SERVICE_RESTART, message=b"service restarting: connect again")


async def _tell_line(session: AgentSession, line: AgentLine) -> None:
    """Right after `hello`, what the agent is busy with, in the frames that tell it as it happens: a wrap-up (the
    `state` frame) and, to a desktop that shows the phone, the call on its line (the `call` frame). A desktop
    that connects again (a reload, a dropped network) so shows what it showed before."""
    if line.state == "wrap_up" and line.wrap_until_ms is not None:
        await session.send(StateChanged(state="wrap_up", until=_at(line.wrap_until_ms)))
    if session.follows_calls and line.call_sid is not None:
        since = _at(line.call_since_ms if line.call_since_ms is not None else now_ms())
        notice = CallNotice(
            agent_id=session.agent.id,
            call_sid=line.call_sid,
            state=CallState.IN_PROGRESS,
            since=since,
            duration_seconds=None,
        )
        await session.send(notice.model_dump_json())


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class _Performed:
    """What an agent's command set in motion in live state, and the channel of the conversation it acted on
    when the command learnt it (accept, complete)."""

    changes: LiveChanges = field(default_factory=LiveChanges)
    channel: Channel | None = None


def _follows_calls(request: web.Request) -> bool:
    calls = request.query.get("calls", "false")
    if calls not in ("true", "false"):
        raise Invalid("calls is `true` or `false`", field="calls")
    return calls == "true"


def _command_from(text: str) -> AgentCommand:
    try:
        return AGENT_COMMAND.validate_json(text)
    except ValidationError as exc:
        # The location of a problem in a command starts with its `type`, which the desktop does not name.
        raise invalid_from(exc, tagged=True) from None


def _error_frame(code: str, message: str, field: str | None = None) -> ErrorFrame:
    return ErrorFrame(error=SocketErrorDetail(code=code, message=message, field=field))


def _refusal_frame(refusal: ErrorAnswer) -> ErrorFrame:
    return _error_frame(refusal.code, refusal.message, refusal.field)
