"""The events other systems read (issue 15): the CloudEvents 1.0 envelope and one versioned model per type's
`data`, with the catalogue of types (when each is emitted, in which order key).

`python -m schema.events` writes their JSON Schemas into `docs/events/` (a test fails when the files there
differ from what the models generate); the AsyncAPI document and `docs/events.md` are made from the same
catalogue.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from schema.interactions import Channel, Direction, IdentityKind

TYPE_PREFIX = "org.contactcenter."
SOURCE = "/contactcenter"
CONTENT_TYPE = "application/cloudevents+json"
SCHEMA_BASE = "https://contactcenter.org/schemas/events"

DataT = TypeVar("DataT")


class CloudEvent(BaseModel, Generic[DataT]):
    """One event in CloudEvents 1.0 structured JSON, with the partitioning and sequence extensions."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="the event id: a decimal integer, ascending; consumers deduplicate by it")
    source: str = SOURCE
    type: str = Field(description="`org.contactcenter.<entity>.<action>`; the routing key is the part after the prefix")
    subject: str = Field(description="the id of the entity the event is about")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    partitionkey: str = Field(description="`<entity kind>:<entity id>`: events with one key come in id order")
    sequence: str = Field(description="the id zero-padded to 20 digits, for lexical ordering")
    data: DataT


class EventPage(BaseModel):
    """`GET /api/v1/events`: events after the one asked for, in id order."""

    events: list[CloudEvent[dict[str, JsonValue]]]
    next_after: int | None = Field(description="pass as `after` for the next page; null when this one was the last")


class EventData(BaseModel):
    model_config = ConfigDict(frozen=True)


class InteractionReceivedV1(EventData):
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    direction: Direction
    received_at: datetime


class InteractionRoutedV1(EventData):
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID


class InteractionOfferedV1(EventData):
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    agent_id: uuid.UUID
    reservation_id: uuid.UUID


class InteractionAnsweredV1(EventData):
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    agent_id: uuid.UUID


class InteractionCompletedV1(InteractionAnsweredV1):
    pass


class ReservationCreatedV1(EventData):
    reservation_id: uuid.UUID
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    interaction_id: uuid.UUID
    expires_at_ms: int = Field(description="when the offer runs out, in milliseconds since the Unix epoch")


class ReservationChangedV1(EventData):
    reservation_id: uuid.UUID
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    interaction_id: uuid.UUID


class ReservationAcceptedV1(ReservationChangedV1):
    pass


class ReservationRejectedV1(ReservationChangedV1):
    pass


class ReservationExpiredV1(ReservationChangedV1):
    pass


class ReservationRevokedV1(ReservationChangedV1):
    pass


class ConversationOpenedV1(EventData):
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    queue_id: uuid.UUID | None = Field(description="null when no queue serves the channel")


class ConversationClosedV1(EventData):
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    agent_id: uuid.UUID | None = Field(
        description="the agent who completed it, or who held it when its card was erased; null when nobody took it"
    )
    closed_at: datetime
    reason: Literal["completed", "abandoned", "withdrawn", "erased"] = Field(
        default="completed",
        description="completed: by its agent; abandoned: the customer gave up before any agent took it (a caller"
        " who hung up while waiting); withdrawn: it left for other work first (a caller gone to voicemail);"
        " erased: its card was erased, whether it waited or an agent held it",
    )


class MessageSentV1(EventData):
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    agent_id: uuid.UUID
    sent_at: datetime


class MessageFailedV1(EventData):
    interaction_id: uuid.UUID = Field(description="its entry on the timeline, whose body starts `(not sent: …)`")
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    agent_id: uuid.UUID
    reason: str = Field(description="why it did not leave, as the agent was told")
    failed_at: datetime


class MessageDeliveredV1(EventData):
    interaction_id: uuid.UUID = Field(description="the reply's entry on the timeline (its `message.sent`)")
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    delivered_at: datetime = Field(description="when the provider reported it delivered")


class MessageUndeliveredV1(EventData):
    interaction_id: uuid.UUID = Field(description="the reply's entry on the timeline (its `message.sent`)")
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    status: Literal["undelivered", "failed"] = Field(
        description="the provider's word: the carrier refused it (`undelivered`), or the provider could not send it"
        " after taking it (`failed`)"
    )
    error_code: str | None = Field(description="the provider's error code (Twilio's, e.g. `30003`), if it gave one")
    reported_at: datetime


class ClientCreatedV1(EventData):
    client_id: uuid.UUID


class IdentityAddedV1(EventData):
    client_id: uuid.UUID
    kind: IdentityKind
    value: str = Field(description="normalised: E.164 phone, lower-cased email, chat visitor id")
    verified: bool


class IdentifierQuarantinedV1(EventData):
    kind: IdentityKind
    digest: str = Field(
        description="hex SHA-256 of `<kind>:<value>` (the value normalised as on the card), never the value: a"
        " system holding the number can match it; emptied when a card that held it or was seen with it is erased"
    )
    reason: str = Field(description="`placeholder` (a withheld caller id, a mail robot) or `seen on <n> cards`")
    cards: int | None = Field(description="the distinct cards it was met on; null for a placeholder")


class IdentifierReleasedV1(EventData):
    kind: IdentityKind
    digest: str = Field(
        description="the same digest as its `identifier.quarantined`; emptied as that one's is when a card that held"
        " it or was seen with it is erased"
    )
    released_by: str = Field(description="`admin`")


class ClientUpdatedV1(EventData):
    client_id: uuid.UUID
    fields: list[str] = Field(description="what changed: `profile.<field>` or `tags` (names only, no values)")


class ClientNoteAddedV1(EventData):
    client_id: uuid.UUID
    note_id: uuid.UUID
    author: str = Field(description="`admin` or `agent:<id>`")


class MergeEvidence(BaseModel):
    kind: IdentityKind = Field(description="the identity both cards were proved to own")
    value: str = Field(description="its normalised value")
    proof: Literal["chat_code", "agent_code"] = Field(
        description="a code sent to it that a chat visitor entered, or that the customer read back to an agent"
    )
    by: str = Field(description="`visitor:<id>` or `agent:<id>` / `admin`")


class ClientMergedV1(EventData):
    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID = Field(description="from now on answers as the survivor")
    actor: str = Field(description="`admin`, `agent:<id>` or, for a merge made by itself, `visitor:<id>`")
    reason: str
    automatic: bool = Field(default=False, description="made by itself on verified evidence, not by a person")
    evidence: MergeEvidence | None = Field(
        default=None, description="what proved it, when automatic (dropped when either card is erased)"
    )


class ClientUnmergedV1(EventData):
    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID = Field(description="a card of its own again")
    actor: str


class ClientErasedV1(EventData):
    client_id: uuid.UUID
    merged: list[uuid.UUID] = Field(description="the cards merged into it, erased with it")
    actor: str


class AgentStateChangedV1(EventData):
    agent_id: uuid.UUID
    state: Literal["available", "away", "offline", "wrap_up"]
    previous: Literal["available", "away", "offline", "wrap_up"]


class AgentCallV1(EventData):
    agent_id: uuid.UUID
    call_sid: str


class MailReceivedV1(EventData):
    message_id: str = Field(description="its Message-ID (synthesised from a hash of the message when it had none)")
    verified: bool = Field(description="the trusted relay's Authentication-Results said DMARC passed")
    automated: bool = Field(description="auto-submitted, bulk, a bounce, from a mailer daemon or our own domains")
    bounce: bool = Field(description="a delivery status notification")
    parsed: bool = Field(description="false: it could not be read and is kept as it came")
    attachments: int
    threaded: bool = Field(description="filed in the conversation of a message it answers, not by its sender")


class MailSentV1(EventData):
    message_id: str = Field(description="our Message-ID of the reply")
    in_reply_to: str = Field(description="the customer's Message-ID it answers ('' for none)")


class MailFailedV1(EventData):
    message_id: str = Field(description="the Message-ID the reply would have had")
    in_reply_to: str = Field(description="the customer's Message-ID it answers ('' for none)")
    reason: str = Field(description="`refused` (the relay said no for good) or `unavailable` (tried, not taken)")
    tries: int


class InteractionAbandonedV1(EventData):
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    offered_to: uuid.UUID | None = Field(
        default=None, description="the agent whose pending offer was revoked; null when none"
    )


class CallConnectedV1(EventData):
    call_sid: str
    agent_id: uuid.UUID
    queue: str | None = Field(description="the queue the caller waited in; null when it chose none")


class CallTransferredV1(EventData):
    call_sid: str
    agent_id: uuid.UUID = Field(description="the agent who handed the call over; off the call from now")
    queue: str = Field(description="the queue the caller waits in again; its next `call.connected` names who took it")


class CallAbandonedV1(EventData):
    call_sid: str
    queue: str | None
    waited_seconds: int = Field(description="from the caller's entering the queue to hanging up")


class CallEndedV1(EventData):
    call_sid: str
    status: str = Field(description="Twilio's final CallStatus: completed, busy, failed, no-answer, canceled")
    agent_id: uuid.UUID | None = Field(description="the agent it was connected to; null when none")
    duration_seconds: int | None = Field(description="Twilio's CallDuration, when it sent one")


class CallPlacedV1(EventData):
    call_sid: str
    agent_id: uuid.UUID
    client_id: uuid.UUID
    interaction_id: uuid.UUID


class VoicemailReceivedV1(EventData):
    call_sid: str
    recording_sid: str
    duration_seconds: int | None


class InteractionMovedV1(EventData):
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID = Field(description="the queue it waits in now")
    previous_queue_id: uuid.UUID


class InteractionTransferredV1(EventData):
    interaction_id: uuid.UUID = Field(description="the contact the work was offered for")
    conversation_id: uuid.UUID
    queue_id: uuid.UUID = Field(description="the queue it waits in now")
    previous_queue_id: uuid.UUID
    agent_id: uuid.UUID = Field(description="the agent who handed it over")


class ConversationTransferredV1(EventData):
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    from_agent_id: uuid.UUID = Field(description="the agent who held it; nobody holds it until the next accepts")
    queue_id: uuid.UUID = Field(description="the queue it waits in now")
    previous_queue_id: uuid.UUID | None = Field(description="the queue it was in (null: none)")


class SupervisorActedV1(EventData):
    action_id: uuid.UUID = Field(description="the audit record's id")
    supervisor_id: uuid.UUID | None = Field(description="null when the admin acted")
    action: Literal["agent_state", "move"]
    agent_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    queue_id: uuid.UUID | None = None
    state: Literal["available", "away", "offline"] | None = None


class ChatStartedV1(EventData):
    visitor_id: uuid.UUID


class ChatMessageV1(EventData):
    visitor_id: uuid.UUID
    seq: int = Field(ge=1, description="the message's number in the visitor's transcript")
    sender: Literal["visitor", "agent"] = Field(description="who wrote it")


class ChatEndedV1(EventData):
    visitor_id: uuid.UUID


@dataclass(frozen=True)
class EventKind:
    """One type of event: its name (the routing key), the model of its data, and when it is emitted."""

    name: str
    data: type[EventData]
    emitted_when: str
    partition: str  # the entity kind its partition key names
    version: int = 1

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.name

    @property
    def dataschema(self) -> str:
        return f"{SCHEMA_BASE}/{self.name}/v{self.version}.json"


EVENT_KINDS = (
    EventKind("interaction.received", InteractionReceivedV1, "a contact came in and was stored", "interaction"),
    EventKind("interaction.routed", InteractionRoutedV1, "it was queued for the agents of a queue", "interaction"),
    EventKind("interaction.offered", InteractionOfferedV1, "it was offered to an agent", "interaction"),
    EventKind("interaction.answered", InteractionAnsweredV1, "an agent accepted it", "interaction"),
    EventKind("interaction.completed", InteractionCompletedV1, "the agent wrapped it up", "interaction"),
    EventKind(
        "interaction.abandoned",
        InteractionAbandonedV1,
        "the customer gave up before any agent took it (a caller who hung up while waiting)",
        "interaction",
    ),
    EventKind("reservation.created", ReservationCreatedV1, "an agent was booked for the work", "reservation"),
    EventKind("reservation.accepted", ReservationAcceptedV1, "the agent accepted the offer", "reservation"),
    EventKind("reservation.rejected", ReservationRejectedV1, "the agent declined the offer", "reservation"),
    EventKind("reservation.expired", ReservationExpiredV1, "nobody answered the offer in time", "reservation"),
    EventKind(
        "reservation.revoked",
        ReservationRevokedV1,
        "the offer was taken back (the agent went away or missed another offer)",
        "reservation",
    ),
    EventKind("conversation.opened", ConversationOpenedV1, "a client's contact opened a conversation", "conversation"),
    EventKind(
        "conversation.closed",
        ConversationClosedV1,
        "the conversation closed: its agent completed it, the customer left before any agent took it, or its"
        " card was erased",
        "conversation",
    ),
    EventKind(
        "conversation.transferred",
        ConversationTransferredV1,
        "the agent who held the conversation handed it to a queue (its own too): an agent of that queue is offered it",
        "conversation",
    ),
    EventKind("message.sent", MessageSentV1, "an agent's reply left on the conversation's channel", "conversation"),
    EventKind(
        "message.failed",
        MessageFailedV1,
        "an agent's reply did not leave (the provider refused it, or did not take it after its tries): it is on "
        "the timeline, marked not sent; sending it again is a new reply",
        "conversation",
    ),
    EventKind(
        "message.delivered",
        MessageDeliveredV1,
        "the provider reported an agent's reply delivered to the customer (SMS: Twilio's status callback)",
        "conversation",
    ),
    EventKind(
        "message.undelivered",
        MessageUndeliveredV1,
        "the provider reported that an agent's reply, which left, did not reach the customer (SMS: the carrier"
        " refused it); the agent may send it again",
        "conversation",
    ),
    EventKind("client.created", ClientCreatedV1, "a contact from an unknown identity made a new card", "client"),
    EventKind("identity.added", IdentityAddedV1, "an identity (phone, email, visitor) joined a card", "client"),
    EventKind(
        "identifier.quarantined",
        IdentifierQuarantinedV1,
        "an identifier became a shared one: it still reaches its card, never merges (a placeholder, or met on more"
        " cards than the policy allows)",
        "identifier",
    ),
    EventKind(
        "identifier.released",
        IdentifierReleasedV1,
        "an admin took a shared identifier out of quarantine: it may merge again, and detection leaves it alone",
        "identifier",
    ),
    EventKind("client.updated", ClientUpdatedV1, "an agent edited a card's profile or tags", "client"),
    EventKind("client.note_added", ClientNoteAddedV1, "an agent added a note to a card", "client"),
    EventKind("client.merged", ClientMergedV1, "a card was merged into another", "client"),
    EventKind("client.unmerged", ClientUnmergedV1, "a merge was undone: both cards as they were", "client"),
    EventKind(
        "client.erased",
        ClientErasedV1,
        "a card's personal data was erased, here and in the events kept (its counts stay)",
        "client",
    ),
    EventKind(
        "agent.state_changed",
        AgentStateChangedV1,
        "an agent became available, away or offline, or went into or out of wrap-up",
        "agent",
    ),
    EventKind(
        "agent.call_started",
        AgentCallV1,
        "a call connected to the agent occupies it: it is offered nothing on any channel until the call ends",
        "agent",
    ),
    EventKind(
        "agent.call_ended",
        AgentCallV1,
        "the call no longer occupies the agent (its final status, its longest time, or a newer call of the agent)",
        "agent",
    ),
    EventKind("mail.received", MailReceivedV1, "a mail was taken in over SMTP and stored (before its 250)", "mail"),
    EventKind("mail.sent", MailSentV1, "the relay took an agent's reply", "mail"),
    EventKind("mail.failed", MailFailedV1, "the relay refused an agent's reply, or could not be reached", "mail"),
    EventKind("call.connected", CallConnectedV1, "a waiting call was connected to the agent who accepted it", "call"),
    EventKind(
        "call.transferred",
        CallTransferredV1,
        "the agent on the call handed it to a queue: the caller waits there again, connected to nobody",
        "call",
    ),
    EventKind("call.abandoned", CallAbandonedV1, "the caller hung up while waiting, before any agent took it", "call"),
    EventKind("call.ended", CallEndedV1, "Twilio told the call's final status (once, whatever it repeats)", "call"),
    EventKind("call.placed", CallPlacedV1, "an agent called a client from its card (click to call)", "call"),
    EventKind("voicemail.received", VoicemailReceivedV1, "a caller's voicemail was recorded", "call"),
    EventKind(
        "interaction.moved", InteractionMovedV1, "a supervisor moved its waiting work to another queue", "interaction"
    ),
    EventKind(
        "interaction.transferred",
        InteractionTransferredV1,
        "the agent who had accepted its work handed it to a queue; it waits there again (live state)",
        "interaction",
    ),
    EventKind(
        "supervisor.acted",
        SupervisorActedV1,
        "a supervisor (or the admin) set an agent's state or moved waiting work; the audit record",
        "supervisor",
    ),
    EventKind("chat.started", ChatStartedV1, "a web chat visitor's first message (or first after ending)", "chat"),
    EventKind("chat.message", ChatMessageV1, "a message joined a web chat's transcript", "chat"),
    EventKind("chat.ended", ChatEndedV1, "the web chat visitor ended the chat", "chat"),
)
BY_NAME = {kind.name: kind for kind in EVENT_KINDS}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Each file of `docs/events/` by its path there: the envelope, and each type's data."""
    files: dict[str, dict[str, Any]] = {
        "cloudevent.json": {
            "$id": f"{SCHEMA_BASE}/cloudevent.json",
            **CloudEvent[dict[str, JsonValue]].model_json_schema(mode="serialization"),
        }
    }
    for kind in EVENT_KINDS:
        schema = kind.data.model_json_schema(mode="serialization")
        files[f"{kind.name}/v{kind.version}.json"] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": kind.dataschema,
            "description": f"`{kind.type}`: {kind.emitted_when}.",
            **schema,
        }
    return files


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_json_schemas(folder: Path) -> list[Path]:
    written = []
    for name, schema in json_schemas().items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


DOCS_FOLDER = Path(__file__).resolve().parent.parent / "docs" / "events"

if __name__ == "__main__":
    for path in write_json_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS_FOLDER):
        print(path)
