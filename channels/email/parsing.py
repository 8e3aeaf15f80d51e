"""Reads one inbound mail with the standard library (`email`, `policy.default`) into what the channel keeps of
it: sender, subject, text and sanitised HTML, the ids it threads by, attachments, what marks it automated, and
what a trusted relay said of its DMARC check.

Mail from outside is messy (broken headers, unknown charsets, 8-bit bodies without a charset, nested
multiparts): nothing here raises on what a sender wrote. A message the library cannot read at all comes back
with `parsed=False` and is kept raw by the caller; every string that leaves is storable (no NUL, no lone
surrogate) and every identifier free of control characters.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

import nh3

# What a Message-ID, an address and a subject may be at most: the interaction's own bounds.
MAX_ID = 200
MAX_ADDRESS = 320
MAX_SUBJECT = 998
# Bodies past this are cut (the whole message is the agent's through its text and attachments).
MAX_BODY = 90_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ANGLE_ID = re.compile(rf"<([^<>\s]{{1,{MAX_ID}}})>")
# An address we keep and may write back into a header: one local part, one domain, nothing that could name a
# second address or a display name there (quotes, commas, angle brackets...).
_ADDRESS = re.compile(r'^[^@\s<>,;:"()\[\]\\]{1,64}@[^@\s<>,;:"()\[\]\\]{1,255}$')
AUTOMATED_PRECEDENCE = frozenset({"bulk", "list", "junk"})
DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class AuthenticationResult:
    """One `Authentication-Results` header (RFC 8601): who added it and what it says of DMARC."""

    authserv_id: str
    dmarc: str  # pass, fail, none, ... ('' when the header says nothing of DMARC)
    header_from: str  # the domain DMARC checked ('' when not said)


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    sender: str  # the From address, lower-cased; '' when none could be read
    subject: str = ""
    text: str = ""
    html: str = ""  # sanitised for the agent's screen
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    auto_submitted: bool = False
    bounce: bool = False  # a delivery status notification (RFC 3464)
    # For a bounce: the Message-ID of the message it reports on, when it says ('' otherwise).
    bounced_message_id: str = ""
    authentication: tuple[AuthenticationResult, ...] = ()
    parsed: bool = True

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """The messages this one answers, nearest first: In-Reply-To, the bounced message, References newest
        first."""
        named = (self.in_reply_to, self.bounced_message_id, *reversed(self.references))
        return tuple(dict.fromkeys(i for i in named if i))

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    def automated(self, our_domains: frozenset[str]) -> bool:
        """Mail no one may answer automatically: auto-submitted or bulk, from a mailer daemon, or our own."""
        local = self.sender.partition("@")[0]
        return (
            self.auto_submitted
            or self.bounce
            or local in DAEMON_LOCAL_PARTS
            or not self.sender
            or self.sender_domain in our_domains
        )

    def dmarc_passed(self, trusted_authserv_id: str) -> bool:
        """Whether the trusted relay's own header (the topmost it added) says DMARC passed for the From
        domain. Headers other servers added, or the sender wrote, count for nothing."""
        if not trusted_authserv_id or not self.sender:
            return False
        for result in self.authentication:
            if result.authserv_id == trusted_authserv_id.lower():
                return result.dmarc == "pass" and result.header_from in ("", self.sender_domain)
        return False


def storable(text: str) -> str:
    """`text` as PostgreSQL stores it: NUL and lone surrogates (undecodable bytes) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", "\ufffd"))


def one_line(text: str, limit: int) -> str:
    """A header's text on one line, free of control characters, at most `limit` characters."""
    return _CONTROL.sub(" ", storable(text)).strip()[:limit]


def synthesised_id(raw: bytes) -> str:
    """The Message-ID of a message that has none (or none we can keep): the same bytes again get the same."""
    return f"sha256-{hashlib.sha256(raw).hexdigest()[:40]}@message-id.invalid"


def parse_mail(raw: bytes) -> ParsedMail:
    """What `raw` (the message as SMTP carried it) says; never raises on what a sender wrote."""
    try:
        message = email.message_from_bytes(raw, policy=policy.default)
    except Exception:
        return ParsedMail(message_id=synthesised_id(raw), sender="", parsed=False)
    assert isinstance(message, EmailMessage)
    text, html, attachments = _bodies(message)
    bounce, bounced = _bounce(message)
    return ParsedMail(
        message_id=_first_id(_header(message, "Message-ID")) or synthesised_id(raw),
        sender=_sender(message),
        subject=one_line(_header(message, "Subject"), MAX_SUBJECT),
        text=storable(text)[:MAX_BODY],
        html=storable(html)[:MAX_BODY],
        in_reply_to=_first_id(_header(message, "In-Reply-To")),
        references=_ids(_header(message, "References")),
        attachments=tuple(attachments),
        auto_submitted=_auto_submitted(message),
        bounce=bounce,
        bounced_message_id=bounced,
        authentication=tuple(_authentication(message)),
    )


def _header(message: Message, name: str) -> str:
    """The header's decoded text ('' when absent or unreadable): encoded words in any charset decoded."""
    try:
        value = message.get(name)
    except Exception:
        value = _raw_header(message, name)
    return "" if value is None else str(value)


def _raw_header(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _ids(text: str) -> tuple[str, ...]:
    found = [one_line(match, MAX_ID) for match in _ANGLE_ID.findall(text)]
    return tuple(dict.fromkeys(i for i in found if i))[-20:]


def _first_id(text: str) -> str:
    found = _ids(text)
    if found:
        return found[0]
    bare = one_line(text, MAX_ID + 1).strip("<> ")
    return bare if bare and len(bare) <= MAX_ID and " " not in bare else ""


def usable_address(text: str) -> str:
    """`text` as an address we keep (lower-cased), or '' when it is not one."""
    address = one_line(text, MAX_ADDRESS).lower()
    return address if _ADDRESS.match(address) else ""


def _sender(message: Message) -> str:
    header = _header(message, "From") or _header(message, "Sender")
    try:
        pairs = getaddresses([header])
    except Exception:
        pairs = [parseaddr(header)]
    for _, address in pairs:
        if usable := usable_address(address):
            return usable
    return ""


def _auto_submitted(message: Message) -> bool:
    auto = _header(message, "Auto-Submitted").strip().lower()
    precedence = _header(message, "Precedence").strip().lower()
    return (bool(auto) and auto != "no") or precedence in AUTOMATED_PRECEDENCE or bool(_header(message, "X-Autoreply"))


def _bounce(message: Message) -> tuple[bool, str]:
    if message.get_content_type() != "multipart/report":
        return False, ""
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return False, ""
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            original = part.get_payload()
            if isinstance(original, list) and original and isinstance(original[0], Message):
                return True, _first_id(_header(original[0], "Message-ID"))
            if isinstance(original, str):
                found = re.search(r"(?im)^message-id:\s*(<[^>]+>)", original)
                return True, _first_id(found.group(1)) if found else ""
    return True, ""


def _authentication(message: Message) -> list[AuthenticationResult]:
    results = []
    for value in message.get_all("Authentication-Results", []) or []:
        text = one_line(str(value), 4000).lower()
        authserv_id = text.split(";", 1)[0].strip().split(" ", 1)[0]
        dmarc = re.search(r"\bdmarc\s*=\s*([a-z]+)", text)
        header_from = re.search(r"\bdmarc\s*=\s*[a-z]+[^;]*?\bheader\.from\s*=\s*([^\s;]+)", text)
        results.append(
            AuthenticationResult(
                authserv_id, dmarc.group(1) if dmarc else "", header_from.group(1) if header_from else ""
            )
        )
    return results


def _bodies(message: EmailMessage) -> tuple[str, str, list[Attachment]]:
    """The first text and HTML bodies (a nested multipart's too) and every other leaf as an attachment."""
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if disposition != "attachment" and content_type == "text/plain" and text is None:
            text = _decoded_text(part)
        elif disposition != "attachment" and content_type == "text/html" and html is None:
            html = nh3.clean(_decoded_text(part))
        elif content_type.startswith("multipart/"):
            continue
        else:
            attachments.append(_attachment(part, len(attachments)))
    if text is None and html is not None:
        text = nh3.clean(html, tags=set()).strip()
    return text or "", html or "", attachments


def _decoded_text(part: Message) -> str:
    """A text part's words, lines ending in LF: its charset when known, else UTF-8, else Latin-1 (8-bit mail
    without a charset)."""
    return _words(part).replace("\r\n", "\n")


def _words(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return storable(str(part.get_payload()))
    charset = part.get_content_charset()
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return payload.decode(candidate)
            except (LookupError, UnicodeDecodeError):
                continue
    return payload.decode("latin-1")


def _attachment(part: Message, position: int) -> Attachment:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):  # a message/rfc822 part: kept as the bytes of the message it holds
        inner = part.get_payload()
        payload = inner[0].as_bytes() if isinstance(inner, list) and inner and isinstance(inner[0], Message) else b""
    try:
        filename = part.get_filename() or ""
    except Exception:
        filename = ""
    filename = one_line(filename, 255).replace("/", "_").replace("\\", "_") or f"attachment-{position + 1}"
    return Attachment(filename, one_line(part.get_content_type(), 255), payload)
