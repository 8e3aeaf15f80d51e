"""Turns one inbound mail into the interaction the routers receive, and what the channel keeps of it: the
sender's identity (verified only on the trusted relay's DMARC pass), the body an agent reads, links to its
attachments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from channels.email.parsing import MAX_ADDRESS, ParsedMail, one_line, usable_address
from schema import Channel, IdentityKind, Interaction

# The sender of a message whose From (and envelope sender) could not be read: kept, on one card of its own.
UNKNOWN_SENDER = "unknown-sender@sender.invalid"
ATTACHMENT_PATH = "/api/v1/email/attachments/{id}"
MAX_BODY = 100_000


def sender_address(mail: ParsedMail, envelope_sender: str) -> str:
    """Whom the card is resolved by: the From address, else the envelope's sender, else the unknown one."""
    if mail.sender:
        return mail.sender
    return usable_address(envelope_sender) or UNKNOWN_SENDER


def agent_body(mail: ParsedMail, attachment_ids: Sequence[uuid.UUID] = ()) -> str:
    """What the agent reads: the subject, the text, and where each attachment is downloaded (`attachment_ids`,
    as the store gave them, in the mail's order)."""
    lines = [f"Subject: {mail.subject}" if mail.subject else "(no subject)", ""]
    if not mail.parsed:
        lines.append("(this message could not be read; it is kept as it came)")
    elif mail.bounce:
        lines.append(f"(a delivery failure report on the message {mail.bounced_message_id or 'unknown'})")
    lines.append(mail.text)
    if mail.attachments:
        lines += ["", "Attachments:"]
        ids = list(attachment_ids)
        for position, attachment in enumerate(mail.attachments):
            link = ATTACHMENT_PATH.format(id=ids[position]) if position < len(ids) else "(not stored)"
            lines.append(
                f"- {attachment.filename} ({attachment.content_type}, {len(attachment.content)} bytes): {link}"
            )
    body = "\n".join(lines)
    return body if len(body) <= MAX_BODY else body[: MAX_BODY - 1] + "…"


def inbound_mail(
    mail: ParsedMail,
    *,
    envelope_sender: str,
    recipient: str,
    verified: bool,
    thread_owner: str | None = None,
    attachment_ids: Sequence[uuid.UUID] = (),
) -> Interaction:
    """The interaction of an inbound mail; `thread_owner`, the customer of the conversation it answers, files it
    there when that is not its sender."""
    sender = sender_address(mail, envelope_sender)
    return Interaction(
        channel=Channel.EMAIL,
        provider_id=mail.message_id,
        from_address=sender,
        thread_address=thread_owner if thread_owner and thread_owner != sender else "",
        sender_kind=IdentityKind.EMAIL,
        to_address=one_line(recipient, MAX_ADDRESS).lower(),
        from_verified=verified,
        body=agent_body(mail, attachment_ids),
        received_at=datetime.now(UTC),
    )
