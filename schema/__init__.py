"""The shared vocabulary of contactcenter: interactions, client cards, agent messages and API bodies.

Pydantic models only, no I/O. Everything that crosses a process boundary (the bus, the API, the agent
socket, both ways) is one of these models.
"""

from schema.api import AgentCreate, AgentCreated, ErrorBody, ErrorDetail, QueueCreate, QueueCreated
from schema.cards import ClientCard, ClientSummary, IdentityView, TimelineEntry
from schema.desktop import (
    AcceptCommand,
    Accepted,
    AgentCommand,
    AgentState,
    CompleteCommand,
    Completed,
    ErrorFrame,
    HeldConversation,
    Hello,
    RejectCommand,
    Rejected,
    Replied,
    ReplyCommand,
    ServerFrame,
    StateChanged,
    StateCommand,
)
from schema.health import Liveness, Readiness, ReadinessChecks
from schema.interactions import Channel, Direction, IdentityKind, Interaction
from schema.offers import AgentNotice, InboundMessage, Offer, OfferedReservation, Revoked

__all__ = [
    "AcceptCommand",
    "Accepted",
    "AgentCommand",
    "AgentCreate",
    "AgentCreated",
    "AgentNotice",
    "AgentState",
    "Channel",
    "ClientCard",
    "ClientSummary",
    "CompleteCommand",
    "Completed",
    "Direction",
    "ErrorBody",
    "ErrorDetail",
    "ErrorFrame",
    "HeldConversation",
    "Hello",
    "IdentityKind",
    "IdentityView",
    "InboundMessage",
    "Interaction",
    "Liveness",
    "Offer",
    "OfferedReservation",
    "QueueCreate",
    "QueueCreated",
    "Readiness",
    "ReadinessChecks",
    "RejectCommand",
    "Rejected",
    "Replied",
    "ReplyCommand",
    "Revoked",
    "ServerFrame",
    "StateChanged",
    "StateCommand",
    "TimelineEntry",
]
