"""What the visitor's socket carries, both ways (docs/api.md, "Web chat"): pydantic models, so a malformed
frame is refused naming its field."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schema.text import Identifier, StorableText

# A visitor's own id for a message: a retry (after a dropped socket) carries the same, and is kept once.
MessageId = Annotated[Identifier, Field(min_length=1, max_length=100)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SendMessage(_Frame):
    type: Literal["message"]
    id: MessageId
    text: StorableText = Field(min_length=1)


class Typing(_Frame):
    type: Literal["typing"]


class Identify(_Frame):
    """What the visitor says about itself: a claim the agent sees, never proof."""

    type: Literal["identify"]
    name: Identifier | None = Field(default=None, max_length=200)
    email: Identifier | None = Field(default=None, max_length=320)
    phone: Identifier | None = Field(default=None, max_length=40)


class EndChat(_Frame):
    type: Literal["end"]


class RequestCode(_Frame):
    """Send a code to the email the visitor claims, to prove it is the visitor's."""

    type: Literal["verify_email"]


class ProveEmail(_Frame):
    type: Literal["verify"]
    code: str = Field(pattern=r"^[0-9]{6}$")


VisitorFrames = SendMessage | Typing | Identify | EndChat | RequestCode | ProveEmail
VISITOR_FRAME: TypeAdapter[VisitorFrames] = TypeAdapter(Annotated[VisitorFrames, Field(discriminator="type")])


class ChatEntry(_Frame):
    """One message of the transcript: numbered (`seq`) in the visitor's conversation, from 1 without gaps."""

    type: Literal["message"] = "message"
    seq: int = Field(ge=1)
    id: str
    from_: Literal["visitor", "agent"] = Field(alias="from")
    text: str
    sent_at: datetime

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)


class Welcome(_Frame):
    type: Literal["welcome"] = "welcome"
    token: str
    visitor_id: uuid.UUID
    # The transcript after the `after` the widget gave (all of it without one), in order.
    history: list[ChatEntry]
    ended: bool
    # False when no agent is there to answer now: the widget offers to leave a message (it waits in the queue).
    agents_available: bool
    # False outside the chat's opening hours (`CC_CHAT_HOURS`): the same offer, said otherwise.
    open_now: bool


class Acknowledged(_Frame):
    """The visitor's message is stored and handed to the routers: the widget stops retrying it."""

    type: Literal["ack"] = "ack"
    id: str
    seq: int


class Identified(_Frame):
    type: Literal["identified"] = "identified"
    name: str | None
    email: str | None
    phone: str | None


class CodeSent(_Frame):
    type: Literal["code_sent"] = "code_sent"
    email: str


class Verified(_Frame):
    type: Literal["verified"] = "verified"
    email: str


class Ended(_Frame):
    type: Literal["ended"] = "ended"


class AgentShown(_Frame):
    """What the visitor sees of the agent: joined (accepted the chat), left (completed it), typing."""

    type: Literal["agent"] = "agent"
    activity: Literal["joined", "left", "typing"]
    name: str


class ChatErrorDetail(_Frame):
    code: str
    message: str
    field: str | None = None
    # The message id a refusal is about, so the widget knows which to retry.
    id: str | None = None


class ChatError(_Frame):
    type: Literal["error"] = "error"
    error: ChatErrorDetail
