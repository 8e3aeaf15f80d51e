"""Each frame the server sends an agent's desktop, written from its model, has the shape docs/api.md documents
(and desktops and the bench's agents read); every one of them is a `ServerFrame`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schema.cards import ClientCard, ClientSummary
from schema.desktop import (
    AGENT_COMMAND,
    SERVER_FRAME,
    Accepted,
    AgentState,
    AgentView,
    Completed,
    ErrorFrame,
    HeldConversation,
    Hello,
    Rejected,
    Replied,
    SocketErrorDetail,
    StateChanged,
    hello_json,
)
from schema.interactions import Channel, Direction, IdentityKind, Interaction
from schema.offers import (
    ClosedReason,
    ConversationClosed,
    InboundMessage,
    Offer,
    OfferedReservation,
    Revoked,
    RevokeReason,
    offer_json,
)
from tests.frames import server_frame

AGENT, RESERVATION, CONVERSATION = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
AT = datetime(2026, 11, 30, 13, 5, 58, 123456, tzinfo=UTC)
SMS = Interaction(
    channel=Channel.SMS,
    provider_id="SM1",
    from_address="+14155550134",
    sender_kind=IdentityKind.PHONE,
    to_address="+15005550006",
    received_at=AT,
)
SMS_JSON = {
    "id": str(SMS.id),
    "channel": "sms",
    "direction": "inbound",
    "provider_id": "SM1",
    "from_address": "+14155550134",
    "sender_kind": "phone",
    "to_address": "+15005550006",
    "from_verified": False,
    "thread_address": "",
    "body": "",
    "received_at": "2026-11-30T13:05:58.123456Z",
}
CARD = ClientCard(client=ClientSummary(id=uuid.uuid4(), created_at=AT), identities=[], timeline=[])


def written(frame: BaseModel | str | bytes) -> dict[str, Any]:
    text = frame if isinstance(frame, str | bytes) else frame.model_dump_json()
    server_frame(text)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_hello_names_the_agent_and_what_it_holds() -> None:
    held = HeldConversation(
        id=CONVERSATION, channel=Channel.SMS, queue="sales", opened_at=AT, card=CARD, interactions=[SMS]
    )
    text = hello_json(AgentView(id=AGENT, name="Ann"), json.dumps([json.loads(held.model_dump_json())]))
    assert written(text) == {
        "type": "hello",
        "agent": {"id": str(AGENT), "name": "Ann"},
        "conversations": [
            {
                "id": str(CONVERSATION),
                "channel": "sms",
                "queue": "sales",
                "opened_at": "2026-11-30T13:05:58.123456Z",
                "card": json.loads(CARD.model_dump_json()),
                "interactions": [SMS_JSON],
            }
        ],
    }
    assert SERVER_FRAME.validate_json(text) == Hello(agent=AgentView(id=AGENT, name="Ann"), conversations=[held])


def test_an_offer_carries_the_reservation_and_the_card_spliced_in_as_written() -> None:
    reservation = OfferedReservation(
        id=RESERVATION, conversation_id=CONVERSATION, queue="sales", expires_at=AT, interaction=SMS
    )
    card_json = CARD.model_dump_json()
    text = offer_json(AGENT, reservation, card_json)
    assert written(text) == {
        "type": "offer",
        "agent_id": str(AGENT),
        "reservation": {
            "id": str(RESERVATION),
            "conversation_id": str(CONVERSATION),
            "queue": "sales",
            "expires_at": "2026-11-30T13:05:58.123456Z",
            "interaction": SMS_JSON,
        },
        "card": json.loads(card_json),
    }
    assert SERVER_FRAME.validate_json(text) == Offer(agent_id=AGENT, reservation=reservation, card=CARD)


def test_a_message_names_its_conversation() -> None:
    frame = InboundMessage(agent_id=AGENT, conversation_id=CONVERSATION, interaction=SMS)
    assert written(frame) == {
        "type": "message",
        "agent_id": str(AGENT),
        "conversation_id": str(CONVERSATION),
        "interaction": SMS_JSON,
    }


def test_a_revocation_says_why() -> None:
    frame = Revoked(agent_id=AGENT, reservation_id=RESERVATION, reason=RevokeReason.EXPIRED)
    assert written(frame) == {
        "type": "revoked",
        "agent_id": str(AGENT),
        "reservation_id": str(RESERVATION),
        "reason": "expired",
    }


def test_a_conversation_closed_under_the_agent_says_which_and_why() -> None:
    frame = ConversationClosed(agent_id=AGENT, conversation_id=CONVERSATION, reason=ClosedReason.ERASED)
    assert written(frame) == {
        "type": "closed",
        "agent_id": str(AGENT),
        "conversation_id": str(CONVERSATION),
        "reason": "erased",
    }


def test_the_answers_to_commands() -> None:
    assert written(StateChanged(state=AgentState.AWAY)) == {"type": "state", "state": "away"}
    assert written(Accepted(reservation_id=RESERVATION, conversation_id=CONVERSATION)) == {
        "type": "accepted",
        "reservation_id": str(RESERVATION),
        "conversation_id": str(CONVERSATION),
    }
    assert written(Rejected(reservation_id=RESERVATION)) == {"type": "rejected", "reservation_id": str(RESERVATION)}
    assert written(Completed(conversation_id=CONVERSATION)) == {
        "type": "completed",
        "conversation_id": str(CONVERSATION),
    }
    reply = SMS.model_copy(update={"direction": Direction.OUTBOUND, "body": "At nine."})
    assert written(Replied(conversation_id=CONVERSATION, interaction=reply)) == {
        "type": "replied",
        "conversation_id": str(CONVERSATION),
        "interaction": SMS_JSON | {"direction": "outbound", "body": "At nine."},
    }


def test_an_error_names_a_field_only_when_one_is_at_fault() -> None:
    naming = ErrorFrame(error=SocketErrorDetail(code="invalid", message="state: bad", field="state"))
    assert written(naming) == {"type": "error", "error": {"code": "invalid", "message": "state: bad", "field": "state"}}
    plain = ErrorFrame(error=SocketErrorDetail(code="unavailable", message="try again"))
    assert written(plain) == {"type": "error", "error": {"code": "unavailable", "message": "try again"}}


def test_a_frame_with_a_field_its_model_does_not_describe_is_caught() -> None:
    frame = Revoked(agent_id=AGENT, reservation_id=RESERVATION, reason=RevokeReason.EXPIRED)
    with pytest.raises(AssertionError):
        server_frame(json.dumps(json.loads(frame.model_dump_json()) | {"undocumented": 1}))


def test_a_frame_of_an_unknown_type_is_no_server_frame() -> None:
    with pytest.raises(ValidationError):
        SERVER_FRAME.validate_json('{"type": "welcome"}')


def test_both_directions_give_a_json_schema_to_generate_the_socket_s_document_from() -> None:
    frames = SERVER_FRAME.json_schema(mode="serialization")
    assert set(frames["discriminator"]["mapping"]) == {
        "hello",
        "offer",
        "message",
        "revoked",
        "closed",
        "customer",
        "claims",
        "call",
        "state",
        "accepted",
        "rejected",
        "completed",
        "transferred",
        "replied",
        "error",
    }
    for name, definition in frames["$defs"].items():
        if "type" in definition.get("properties", {}):
            assert "type" in definition["required"], f"{name} is always written with its type"
    assert "field" not in frames["$defs"]["SocketErrorDetail"]["required"]
    commands = AGENT_COMMAND.json_schema()
    assert set(commands["discriminator"]["mapping"]) == {
        "state",
        "accept",
        "reject",
        "reply",
        "complete",
        "transfer",
        "typing",
    }
