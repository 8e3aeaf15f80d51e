"""The outbound port: how an agent's reply leaves on the conversation's own channel. Channels implement it
(`channels.twilio.rest` for SMS); the app assembly hands each channel's senders to `agents.replies`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from schema import IdentityKind


@dataclass(frozen=True)
class OutboundMessage:
    to_address: str
    from_address: str
    body: str
    # The provider's id of the customer's latest message in the conversation: a channel that threads (mail)
    # answers it.
    in_reply_to: str = ""


class ReplySender(Protocol):
    """Sends replies on one channel, which sets their bounds: the desktop's own bound is only the body's."""

    # The longest reply the channel carries, in characters (SMS: 1,600); a longer one is refused naming `text`.
    max_length: int
    # What kind of identity an address on the channel is (ours, the customer's): a reply's `sender_kind`.
    address_kind: IdentityKind

    async def send(self, message: OutboundMessage) -> str:
        """Hand the message to the provider; return the provider's id for it. Raise `Invalid` naming `text`
        for a body past `max_length` (before any provider hears of it), `Unavailable` when the provider cannot
        be reached, `Invalid` when it refuses the message."""
