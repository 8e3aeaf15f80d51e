"""Bodies of the voice API: a dialled number's menu (greeting, options, opening hours) and where an agent takes
calls."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schema.api import QueueName
from schema.text import Identifier, StorableText, TimeZoneName

_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
Digit = Annotated[str, Field(pattern=r"^[0-9*#]$", description="the key the caller presses")]
SayText = Annotated[StorableText, Field(max_length=1000)]


class MenuOption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    digit: Digit
    # Words a caller may say instead of pressing the key; they are also the speech recogniser's hints.
    words: list[Annotated[Identifier, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=10)
    queue: QueueName


WEEKDAYS = ("1", "2", "3", "4", "5", "6", "7")


class VoiceMenu(BaseModel):
    """`PUT /api/v1/voice/numbers/{number}`: what a caller to the number hears and can choose."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    greeting: SayText = ""
    prompt: SayText = Field(default="", description="said while the menu listens for a key or words")
    options: list[MenuOption] = Field(default_factory=list, max_length=12)
    time_zone: TimeZoneName = Field(default="UTC", description="an IANA time zone, for `hours`")
    hours: dict[str, list[tuple[str, str]]] = Field(
        default_factory=dict,
        description='per ISO weekday ("1" = Monday), open spans [["09:00", "17:00"], ...]; none at all: always open',
    )
    max_wait_seconds: int = Field(default=600, ge=10, le=86400, description="then the caller may leave a voicemail")

    @field_validator("hours")
    @classmethod
    def _spans(cls, value: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        if any(day not in WEEKDAYS for day in value):
            raise ValueError('each day is an ISO weekday, "1" (Monday) to "7" (Sunday)')
        for spans in value.values():
            if len(spans) > 8:
                raise ValueError("at most 8 spans a day")
            for start, end in spans:
                if not (_TIME.match(start) and _TIME.match(end)) or start >= end:
                    raise ValueError('each span is ["HH:MM", "HH:MM"], the start before the end')
        return value

    @model_validator(mode="after")
    def _distinct_digits(self) -> VoiceMenu:
        digits = [option.digit for option in self.options]
        if len(digits) != len(set(digits)):
            raise ValueError("each option has its own digit")
        return self


class VoiceEndpoint(BaseModel):
    """`PUT /api/v1/voice/agents/{agent_id}/endpoint`: where the agent's calls ring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["client", "phone", "sip"]
    address: Annotated[Identifier, Field(min_length=1, max_length=200)]


class CallRequest(BaseModel):
    """`POST /api/v1/voice/calls`: an agent calls a client from its card. The agent's endpoint rings first;
    when it answers, the client's number is dialled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: uuid.UUID
    to: Annotated[Identifier, Field(max_length=40)] | None = Field(
        default=None, description="one of the card's phone numbers (default: its first)"
    )
    from_number: Annotated[Identifier, Field(max_length=40)] | None = Field(
        default=None, description="the number the client sees (default: the first number with a menu)"
    )


class CallPlaced(BaseModel):
    call_sid: str
    interaction_id: uuid.UUID
    to: str
    from_number: str


class VoiceToken(BaseModel):
    """`POST /api/v1/voice/token`: a Twilio Voice access token for the agent's browser or app."""

    token: str
    identity: str
    expires_in: int
