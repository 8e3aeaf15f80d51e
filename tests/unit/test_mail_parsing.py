"""Reading inbound mail: CPython's own corpus of test messages, messy real-world shapes, and arbitrary
headers (hypothesis) — nothing raises, everything that comes out is storable."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.email.intake import UNKNOWN_SENDER, agent_body, inbound_mail
from channels.email.parsing import ParsedMail, parse_mail, synthesised_id

# CPython's own test messages (Lib/test/test_email/data), copied: see tests/data/cpython_email/README.md.
CORPUS = sorted((Path(__file__).parent.parent / "data" / "cpython_email").glob("msg_*.txt"))
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _assert_storable(mail: ParsedMail) -> None:
    for text in (mail.subject, mail.text, mail.html, *(a.filename for a in mail.attachments)):
        assert not _UNSTORABLE.search(text)
    for identifier in (mail.message_id, mail.sender, mail.in_reply_to, *mail.references, mail.subject):
        assert not _CONTROL.search(identifier)
    assert 0 < len(mail.message_id) <= 200


def test_the_cpython_corpus_is_there() -> None:
    assert len(CORPUS) > 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_message_of_cpythons_corpus_becomes_an_interaction(path: Path) -> None:
    raw = path.read_bytes()
    mail = parse_mail(raw)
    _assert_storable(mail)
    interaction = inbound_mail(mail, envelope_sender="", recipient="support@shop.example", verified=False)
    assert interaction.from_address
    assert interaction.provider_id == mail.message_id


def test_a_multipart_alternative_gives_the_text_and_the_sanitised_html() -> None:
    mail = EmailMessage()
    mail["From"] = "Zoë <zoe@Example.COM>"
    mail["Subject"] = "=?iso-8859-1?q?R=E9clamation?="
    mail["Message-ID"] = "<a1@example.com>"
    mail.set_content("plain words")
    mail.add_alternative('<p onclick="steal()">rich <b>words</b><script>alert(1)</script></p>', subtype="html")
    parsed = parse_mail(mail.as_bytes())
    assert parsed.sender == "zoe@example.com"
    assert parsed.subject == "Réclamation"
    assert parsed.text.strip() == "plain words"
    assert "<b>words</b>" in parsed.html
    assert "script" not in parsed.html and "onclick" not in parsed.html


def test_nested_multiparts_with_a_non_ascii_attachment_name() -> None:
    inner = EmailMessage()
    inner.set_content("the text")
    inner.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="relevé juin.csv")
    outer = EmailMessage()
    outer["From"] = "a@b.example"
    outer["Message-ID"] = "<nested@b.example>"
    outer.set_content("cover note")
    outer.add_attachment(inner)  # message/rfc822 inside a mixed multipart
    outer.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="../../etc/passwd")
    parsed = parse_mail(outer.as_bytes())
    assert parsed.text.strip() == "cover note"
    names = [a.filename for a in parsed.attachments]
    assert "relevé juin.csv" in names
    assert ".._.._etc_passwd" in names
    pdf = next(a for a in parsed.attachments if a.content_type == "application/pdf")
    assert pdf.content == b"%PDF-1.4 fake"


def test_an_8bit_body_without_a_charset_and_broken_headers_are_read() -> None:
    raw = (
        b"From: =?utf-8?b?broken\r\nTo: support@shop.example\r\nSubject: caf\xe9 \xff\xfe\r\n"
        b"Message-ID: not an id at all <\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"X-Garbage\r\n\r\nna\xefve caf\xc3\xa9 \x00 body\r\n"
    )
    parsed = parse_mail(raw)
    _assert_storable(parsed)
    assert "body" in parsed.text
    assert parsed.message_id == synthesised_id(raw)  # no usable id: the same bytes get the same one
    interaction = inbound_mail(parsed, envelope_sender="", recipient="support@shop.example", verified=False)
    assert interaction.from_address == UNKNOWN_SENDER


def test_bytes_that_are_no_mail_at_all_still_become_an_interaction() -> None:
    raw = b"\x00\xff\xfe garbage without headers \r\n\r\n\x80\x81"
    parsed = parse_mail(raw)
    _assert_storable(parsed)
    body = agent_body(parsed)
    interaction = inbound_mail(parsed, envelope_sender="bob@x.example", recipient="s@shop.example", verified=False)
    assert interaction.from_address == "bob@x.example"
    assert body == interaction.body


def test_a_delivery_status_notification_names_the_message_it_reports_on() -> None:
    raw = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        b"To: support@shop.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <dsn-1@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n"
        b"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@shop.example\r\n"
        b"Message-ID: <reply-7@shop.example>\r\nSubject: Re: My order\r\n\r\n--B--\r\n"
    )
    parsed = parse_mail(raw)
    assert parsed.bounce
    assert parsed.bounced_message_id == "reply-7@shop.example"
    assert parsed.automated(frozenset({"shop.example"}))
    assert "reply-7@shop.example" in agent_body(parsed)


@pytest.mark.parametrize(
    ("headers", "automated"),
    [
        ({"Auto-Submitted": "auto-replied"}, True),
        ({"Auto-Submitted": "no"}, False),
        ({"Precedence": "bulk"}, True),
        ({"Precedence": "List"}, True),
        ({"Precedence": "junk"}, True),
        ({"From": "MAILER-DAEMON@mx.example"}, True),
        ({"From": "support@shop.example"}, True),
        ({}, False),
    ],
)
def test_what_no_one_may_answer_automatically(headers: dict[str, str], automated: bool) -> None:
    mail = EmailMessage()
    mail["From"] = headers.pop("From", "ann@customer.example")
    for name, value in headers.items():
        mail[name] = value
    mail.set_content("hi")
    assert parse_mail(mail.as_bytes()).automated(frozenset({"shop.example"})) is automated


@pytest.mark.parametrize(
    ("header", "verified"),
    [
        ("mx.shop.example; dmarc=pass (p=reject) header.from=customer.example", True),
        ("mx.shop.example; spf=pass smtp.mailfrom=customer.example; dmarc=pass header.from=customer.example", True),
        ("mx.shop.example; dmarc=fail header.from=customer.example", False),
        ("mx.shop.example; dmarc=pass header.from=other.example", False),
        ("mx.shop.example; spf=pass", False),
        ("mx.elsewhere.example; dmarc=pass header.from=customer.example", False),
    ],
)
def test_dmarc_pass_counts_only_in_the_trusted_relays_header(header: str, verified: bool) -> None:
    mail = EmailMessage()
    mail["From"] = "ann@customer.example"
    mail["Authentication-Results"] = header
    mail.set_content("hi")
    assert parse_mail(mail.as_bytes()).dmarc_passed("mx.shop.example") is verified


def test_the_topmost_trusted_header_decides_not_one_the_sender_wrote_below_it() -> None:
    raw = (
        b"Authentication-Results: mx.shop.example; dmarc=fail header.from=customer.example\r\n"
        b"Authentication-Results: mx.shop.example; dmarc=pass header.from=customer.example\r\n"
        b"From: ann@customer.example\r\n\r\nhi\r\n"
    )
    assert not parse_mail(raw).dmarc_passed("mx.shop.example")


_HEADER_NAMES = st.sampled_from(
    [
        "From",
        "Subject",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Authentication-Results",
        "Content-Type",
        "Auto-Submitted",
        "Precedence",
        "Content-Disposition",
        "X-Other",
    ]
)


def test_any_header_bytes_parse_into_storable_fields() -> None:
    cases = 0

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=200)), max_size=8), st.binary(max_size=300))
    def check(headers: list[tuple[str, bytes]], body: bytes) -> None:
        nonlocal cases
        cases += 1
        raw = b"".join(name.encode() + b": " + value.replace(b"\r\n", b" ") + b"\r\n" for name, value in headers)
        parsed = parse_mail(raw + b"\r\n" + body)
        _assert_storable(parsed)
        inbound_mail(parsed, envelope_sender="", recipient="support@shop.example", verified=False)

    check()
    print(f"\nmail header bytes: {cases} cases")  # the issue asks how many cases each edge took


def test_any_unicode_subject_and_name_survive_encoding_and_parsing() -> None:
    cases = [0, 0]

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=120), st.text(max_size=120), st.emails())
    def check(subject: str, name: str, address: str) -> None:
        cases[0] += 1
        mail = EmailMessage()
        try:
            mail["Subject"] = subject
            mail["From"] = (
                f'"{name}" <{address}>' if name.isprintable() and '"' not in name and "\\" not in name else address
            )
            mail.set_content("hi")
            raw = mail.as_bytes()
        except (ValueError, TypeError, IndexError, UnicodeError):
            return  # the library will not write it: no sender's client would either
        cases[1] += 1
        parsed = parse_mail(raw)
        _assert_storable(parsed)

    check()
    print(f"\nmail subjects and names: {cases[0]} cases, {cases[1]} written by the library and parsed")


@pytest.mark.parametrize(
    "from_header",
    [
        '"a,b"@customer.example',
        "<victim@customer.example>, <other@evil.example>",
        "x@customer.example\r\n\tBcc: all@evil.example",
        '<"x\\"y"@evil.example>',
    ],
)
def test_a_sender_address_never_carries_a_second_address_into_our_headers(from_header: str) -> None:
    raw = f"From: {from_header}\r\nSubject: hi\r\n\r\nbody\r\n".encode()
    sender = parse_mail(raw).sender
    assert not re.search(r'[\s<>,;:"()\[\]\\]', sender)
    assert sender.count("@") <= 1
