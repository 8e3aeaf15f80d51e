"""The outbound port: how an agent's reply leaves on the conversation's own channel. Channels implement it
(`channels.twilio.rest` for SMS); the app assembly hands each channel's senders to `agents.replies`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundMessage:
    to_address: str
    from_address: str
    body: str


class ReplySender(Protocol):
    async def send(self, message: OutboundMessage) -> str:
        """Hand the message to the provider; return the provider's id for it. Raise `Unavailable` when the
        provider cannot be reached, `Invalid` when it refuses the message."""
