"""The shared vocabulary of contactcenter: interactions, client cards, agent messages and API bodies.

Pydantic models only, no I/O. Everything that crosses a process boundary (the bus, the API, the agent
socket) is one of these models.
"""

from schema.api import AgentCreate, AgentCreated, ErrorBody, ErrorDetail, QueueCreate, QueueCreated
from schema.cards import ClientCard, ClientSummary, IdentityView, TimelineEntry
from schema.desktop import (
    AcceptCommand,
    AgentCommand,
    AgentState,
    CompleteCommand,
    HeldConversation,
    Hello,
    RejectCommand,
    ReplyCommand,
    StateCommand,
)
from schema.health import Liveness, Readiness, ReadinessChecks
from schema.interactions import Channel, Direction, IdentityKind, Interaction
from schema.offers import AgentNotice, Offer, OfferedReservation

__all__ = [
    "AcceptCommand",
    "AgentCommand",
    "AgentCreate",
    "AgentCreated",
    "AgentNotice",
    "AgentState",
    "Channel",
    "ClientCard",
    "ClientSummary",
    "CompleteCommand",
    "Direction",
    "ErrorBody",
    "ErrorDetail",
    "HeldConversation",
    "Hello",
    "IdentityKind",
    "IdentityView",
    "Interaction",
    "Liveness",
    "Offer",
    "OfferedReservation",
    "QueueCreate",
    "QueueCreated",
    "Readiness",
    "ReadinessChecks",
    "RejectCommand",
    "ReplyCommand",
    "StateCommand",
    "TimelineEntry",
]
