"""Channel adapters, one package per provider or channel (`twilio/`, `email/`, `webchat/`), and the seam
between a channel and the host that runs it.

A channel package exposes one `ChannelAdapter`: its HTTP operations (for the API's document, whichever role
serves them) and, given what the host lends it (`ChannelContext`), the parts it adds to the service
(`ChannelParts`: routes, servers and intakes it runs, reply senders, ...). The host registers channels from one list
(`contactcenter.host.app.CHANNELS`) and never switches on a channel's name. Channels never import each other;
what they share but none owns lives in `intake/`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import asyncpg
from aiohttp import web

from channels.intake.admission import Admission
from channels.intake.publishing import InteractionPublisher
from contactcenter.agents import AgentCallsPort, AnswerPort, WithdrawalPort
from contactcenter.agents.outbound import ConversationParty, CustomerPresencePort, ReplySender, StaffingPort
from contactcenter.api.operations import Operation
from contactcenter.metrics import IntakeMetrics
from contactcenter.settings import Settings
from schema import Channel, IdentityKind


class Caller(Protocol):
    """Who called an API route a channel serves, as the host's authentication answers."""

    @property
    def id(self) -> uuid.UUID: ...


class Gatekeeper(Protocol):
    """The host's bearer-token checks, for API routes a channel serves (401/403 in the error shape)."""

    async def require_admin(self, request: web.Request) -> None: ...

    async def require_agent(self, request: web.Request, *, allow_query: bool = False) -> Caller: ...

    async def require_staff_actor(self, request: web.Request) -> str:
        """The admin or an agent, named `admin` or `agent:<id>`: for what customers sent to the staff (mail's
        attachments, each for the agent of its conversation)."""


class SocketNotices(Protocol):
    """Notices for sockets held by id, whichever API process holds them: the relay agents' notices take
    (`contactcenter.agents.relay.NoticeRelay`), on channels of the audience's own."""

    async def send(self, socket_id: uuid.UUID, body: bytes) -> None: ...

    def listen(self, deliver: Callable[[uuid.UUID, bytes], Awaitable[object]]) -> None: ...

    async def hold(self, socket_id: uuid.UUID) -> None: ...

    async def release(self, socket_id: uuid.UUID) -> None: ...

    async def close(self) -> None: ...


class RateLimit(Protocol):
    """A rate per sender that holds across API processes (`contactcenter.live.rates.RedisRate`)."""

    async def take(self, sender: str) -> bool:
        """One frame more from `sender`: False when it is over its rate; `Unavailable` when it cannot tell."""
        ...


class ProvedIdentityPort(Protocol):
    """Identities a customer proved on a channel (a code sent to its email): they join the customer's card as
    verified, and merge it with a card holding them verified (`contactcenter.store.proofs.ProvedIdentities`)."""

    async def proved(self, owner_kind: IdentityKind, owner: str, kind: IdentityKind, value: str) -> uuid.UUID:
        """The card `owner` answers as once `value` is on it."""
        ...


@dataclass(frozen=True)
class ChannelContext:
    """What the host lends every channel: the same for all, opened and closed by the host."""

    settings: Settings
    publisher: InteractionPublisher
    # One bound on contacts in hand across every channel's intake.
    admission: Admission
    metrics: IntakeMetrics
    # For the providers' REST APIs (replies, call control); closed by the host.
    http: aiohttp.ClientSession
    # PostgreSQL, for what a channel keeps of its own beside the interactions (its migration's tables, behind
    # its own port: voice menus and calls, mail's bodies and attachments).
    pool: asyncpg.Pool
    gatekeeper: Gatekeeper
    # Where a channel tells that its contact left before any agent took it (a caller who hung up).
    withdrawals: WithdrawalPort
    # Where a channel tells that a call was connected to an agent, and that it ended: the call occupies its agent.
    calls: AgentCallsPort
    # A relay for the channel's own sockets (`audience` names their channels); the channel closes it.
    socket_notices: Callable[[str], SocketNotices]
    # Tells the agent holding a customer's conversation what the customer does (typing, ended).
    presence: CustomerPresencePort
    # Whether an agent is there to answer a channel now (a chat widget offers to leave a message when not).
    staffing: StaffingPort
    # A rate limit per sender, shared by every API process: `(audience, per minute, burst)` names one.
    rate_limit: Callable[[str, int, int], RateLimit]
    # Where a channel adds what its customer proved to the customer's card.
    proved_identities: ProvedIdentityPort


class ChannelServer(Protocol):
    """A server a channel runs (a chat socket's own listener; SMTP as an intake): started once the service's
    resources are open, stopped before they close."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ChannelParts:
    """What one channel adds to a running service."""

    routes: Sequence[web.RouteDef] = ()
    # Run beside the HTTP API, by the roles that serve it (`api`, `all`): a chat socket's own listener.
    servers: Sequence[ChannelServer] = ()
    # Intakes of their own, run by the roles `smtp` and `all` (an SMTP listener, an IMAP poller): a provider that
    # is not HTTP reaches them, so they scale and restart apart from the API.
    intakes: Sequence[ChannelServer] = ()
    # How an agent's reply leaves on each conversation channel this package serves.
    senders: Mapping[Channel, ReplySender] = field(default_factory=dict)
    # What happens on the provider's side when an agent accepts a contact of each channel (a call: connect it).
    answerers: Mapping[Channel, AnswerPort] = field(default_factory=dict)
    # On channels with a live presence (web chat), how the customer is shown the agent joining, leaving, typing.
    parties: Mapping[Channel, ConversationParty] = field(default_factory=dict)
    # Run as soon as the service begins to stop, before aiohttp waits for the requests in progress: long-lived
    # connections (a chat's sockets) closed, their clients told to reconnect — to another process.
    disconnects: Sequence[Callable[[], Awaitable[None]]] = ()


class ChannelAdapter(Protocol):
    """One channel package as the host sees it."""

    @property
    def operations(self) -> Sequence[Operation]:
        """Its HTTP operations, each served by a route of its `parts`: they go in the API's document."""
        ...

    def parts(self, context: ChannelContext) -> ChannelParts:
        """Its routes, servers and reply senders, built on what the host lends. Opens nothing: servers start
        when the host starts them."""
        ...

    def settings_problem(self, settings: Settings) -> str | None:
        """What is wrong with a setting whose grammar is the channel's own (`CC_NAME: why`), None when nothing:
        the command stops on it before opening anything, as on any other bad setting."""
        ...
