"""Email end to end on the real PostgreSQL, RabbitMQ and Redis: real SMTP in (smtplib to our server) and out
(our replies to a local aiosmtpd relay)."""

from __future__ import annotations

import asyncio
import re
import smtplib
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import SecretStr

from contactcenter.host.app import SERVICES
from contactcenter.settings import Settings
from tests.mail import OUR_DOMAIN, SUPPORT, Relay, customer_mail, send_mail, smtp_port
from tests.running import AgentDesktop, RunningService, run_service

CUSTOMER = "ann@customer.example"


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    running = Relay()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def mail_settings(service_settings: Settings, relay: Relay) -> Settings:
    return service_settings.model_copy(
        update={
            "mail_domains": [OUR_DOMAIN],
            "smtp_port": 0,
            "smtp_relay_url": SecretStr(relay.url),
            "mail_trusted_authserv_id": "mx.shop.example",
            "smtp_relay_tries": 2,
        }
    )


@pytest.fixture
async def mail_service(mail_settings: Settings) -> AsyncIterator[RunningService]:
    async with run_service(mail_settings) as running:
        yield running


async def _mail_events(service: RunningService) -> list[tuple[str, dict[str, Any]]]:
    """The mail events of the event log, in order, once the relay has stamped them."""
    async with service.http.get(
        f"{service.base_url}/api/v1/events", params={"after": "0"}, headers=service.admin_headers()
    ) as response:
        assert response.status == 200
        events = (await response.json())["events"]
    return [
        (event["type"].removeprefix("org.contactcenter."), event["data"])
        for event in events
        if event["type"].startswith("org.contactcenter.mail.")
    ]


async def _wait_for_mail_events(service: RunningService, count: int) -> list[tuple[str, dict[str, Any]]]:
    async with asyncio.timeout(10):
        while len(events := await _mail_events(service)) < count:
            await asyncio.sleep(0.05)
    return events


async def _support_desk(service: RunningService) -> tuple[AgentDesktop, int]:
    """A queue for mail, an available agent of it, and the port mail is sent to."""
    await service.create_queue("support", ["email"])
    return await service.available_agent(queues=("support",)), smtp_port(service)


async def _card(service: RunningService, email: str) -> tuple[int, dict[str, Any]]:
    async with service.http.get(
        f"{service.base_url}/api/v1/clients/lookup", params={"email": email}, headers=service.admin_headers()
    ) as response:
        return response.status, await response.json()


async def _answered_conversation(
    service: RunningService, relay: Relay, desktop: AgentDesktop, port: int, text: str
) -> tuple[str, EmailMessage]:
    """The customer's mail, accepted by the agent and answered: the conversation and our reply as relayed."""
    await send_mail(port, customer_mail())
    offer = await _accepted_offer(service, desktop)
    conversation_id: str = offer["reservation"]["conversation_id"]
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": text}, "replied")
    return conversation_id, relay.received[-1]


async def _accepted_offer(service: RunningService, desktop: AgentDesktop) -> dict[str, Any]:
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    return offer


async def test_a_customers_mail_pops_the_card_the_reply_threads_and_the_answer_joins_the_conversation(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)

    refused = await send_mail(port, customer_mail(text="Where is my order 42?"))
    assert refused == {}
    offer = await _accepted_offer(mail_service, desktop)
    card = offer["card"]
    assert card["identities"] == [
        {
            "kind": "email",
            "value": CUSTOMER,
            "raw": CUSTOMER,
            "verified": False,
            "source": "contact",
            "flags": [],
            "shared": False,
        }
    ]
    interaction = offer["reservation"]["interaction"]
    assert interaction["channel"] == "email"
    assert interaction["provider_id"] == "order-1@customer.example"
    assert "Subject: My order" in interaction["body"]
    assert "Where is my order 42?" in interaction["body"]
    conversation_id = offer["reservation"]["conversation_id"]

    replied = await desktop.command(
        {"type": "reply", "conversation_id": conversation_id, "text": "It left today.\n\nRegards"}, "replied"
    )
    (sent,) = relay.received
    assert relay.envelopes == [(SUPPORT, [CUSTOMER])]
    assert sent["In-Reply-To"] == "<order-1@customer.example>"
    assert "<order-1@customer.example>" in sent["References"]
    token = str(sent["Message-ID"]).strip("<>").partition("@")[0]
    assert sent["Subject"] == f"Re: My order [#{token}]"
    assert str(sent["Message-ID"]).endswith(f"@{OUR_DOMAIN}>")
    assert sent.get_content_type() == "multipart/alternative"
    text_part = sent.get_body(("plain",))
    html_part = sent.get_body(("html",))
    assert text_part is not None and "It left today." in text_part.get_content()
    assert html_part is not None and "<p>It left today.</p>" in html_part.get_content()
    # The customer's message, quoted under the answer.
    assert f"{CUSTOMER} wrote:\n> Where is my order 42?" in text_part.get_content().replace("\r\n", "\n")
    assert "<blockquote><p>Where is my order 42?</p></blockquote>" in html_part.get_content()
    assert replied["interaction"]["provider_id"] == str(sent["Message-ID"]).strip("<>")

    # The customer's mail client answers our reply: it joins the same conversation, to the agent who holds it.
    answer = customer_mail(
        subject="Re: My order",
        text="Thanks!",
        message_id="<order-2@customer.example>",
        headers=[
            ("In-Reply-To", str(sent["Message-ID"])),
            ("References", f"<order-1@customer.example> {sent['Message-ID']}"),
        ],
    )
    await send_mail(port, answer)
    message = await desktop.receive("message")
    assert message["conversation_id"] == conversation_id
    assert "Thanks!" in message["interaction"]["body"]

    timeline = (await _card(mail_service, CUSTOMER))[1]["timeline"]
    assert [(e["channel"], e["direction"]) for e in timeline] == [
        ("email", "inbound"),
        ("email", "outbound"),
        ("email", "inbound"),
    ]
    events = await _wait_for_mail_events(mail_service, 3)
    assert [(kind, data["message_id"]) for kind, data in events] == [
        ("mail.received", "order-1@customer.example"),
        ("mail.sent", replied["interaction"]["provider_id"]),
        ("mail.received", "order-2@customer.example"),
    ]
    assert events[0][1]["verified"] is False and events[0][1]["automated"] is False
    assert events[1][1]["in_reply_to"] == "order-1@customer.example"
    await desktop.close()


async def test_mail_for_another_domain_is_refused_with_550(mail_service: RunningService) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await send_mail(smtp_port(mail_service), customer_mail(), recipients=["someone@elsewhere.example"])
    ((code, _),) = refused.value.recipients.values()
    assert code == 550


def _send_without_declaring_size(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        return client.data(raw)


async def test_a_message_over_the_size_limit_is_refused_with_552(mail_settings: Settings) -> None:
    settings = mail_settings.model_copy(update={"smtp_max_message_bytes": 4096})
    big = customer_mail(text="x" * 10_000)
    async with run_service(settings) as service:
        # Declared (ESMTP SIZE): refused before any data is sent.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await send_mail(smtp_port(service), big)
        assert refused.value.smtp_code == 552
        # Not declared: refused once past the limit; what follows is drained, not kept.
        code, _ = await asyncio.to_thread(_send_without_declaring_size, smtp_port(service), big.as_bytes())
        assert code == 552


async def test_a_bus_that_does_not_confirm_gets_the_sender_a_451_to_retry_and_the_retry_is_stored_once(
    mail_settings: Settings,
) -> None:
    async with run_service(mail_settings) as service:
        await service.create_queue("support", ["email"])
        await service.app[SERVICES].bus.close()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await send_mail(smtp_port(service), customer_mail())
        assert refused.value.smtp_code == 451
    # The sending server retries later, against a service whose bus is back.
    async with run_service(mail_settings) as service:
        desktop = await service.available_agent(queues=("support",))
        port = smtp_port(service)
        await send_mail(port, customer_mail())
        await send_mail(port, customer_mail())  # a retry after a lost 250: the same Message-ID
        await _accepted_offer(service, desktop)
        assert len((await _card(service, CUSTOMER))[1]["timeline"]) == 1
        await desktop.close()


async def test_dmarc_pass_verifies_the_sender_only_in_the_trusted_relays_own_header(
    mail_service: RunningService,
) -> None:
    desktop, port = await _support_desk(mail_service)
    forged = customer_mail(
        sender="bob@bank.example",
        message_id="<forged@bank.example>",
        headers=[("Authentication-Results", "mx.attacker.example; dmarc=pass header.from=bank.example")],
    )
    await send_mail(port, forged, sender="bob@bank.example")
    offer = await _accepted_offer(mail_service, desktop)
    assert offer["card"]["identities"] == [
        {
            "kind": "email",
            "value": "bob@bank.example",
            "raw": "bob@bank.example",
            "verified": False,
            "source": "contact",
            "flags": [],
            "shared": False,
        }
    ]
    await desktop.command({"type": "complete", "conversation_id": offer["reservation"]["conversation_id"]}, "completed")

    genuine = customer_mail(
        sender="carol@bank.example",
        message_id="<genuine@bank.example>",
        headers=[("Authentication-Results", "mx.shop.example; spf=pass; dmarc=pass header.from=bank.example")],
    )
    await send_mail(port, genuine, sender="carol@bank.example")
    offer = await _accepted_offer(mail_service, desktop)
    assert offer["card"]["identities"] == [
        {
            "kind": "email",
            "value": "carol@bank.example",
            "raw": "carol@bank.example",
            "verified": True,
            "source": "contact",
            "flags": [],
            "shared": False,
        }
    ]
    await desktop.close()


async def test_a_relay_that_refuses_for_now_is_retried_then_the_agent_is_told(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)
    await send_mail(port, customer_mail())
    offer = await _accepted_offer(mail_service, desktop)
    relay.refuse = "451 4.3.0 try later"
    error = await desktop.command(
        {"type": "reply", "conversation_id": offer["reservation"]["conversation_id"], "text": "Hello"}, "error"
    )
    assert error["error"]["code"] == "unavailable"
    assert relay.received == []
    (_, failed) = (await _wait_for_mail_events(mail_service, 2))[1]
    assert failed["reason"] == "unavailable" and failed["tries"] == 2
    relay.refuse = None
    await desktop.command(
        {"type": "reply", "conversation_id": offer["reservation"]["conversation_id"], "text": "Hello"}, "replied"
    )
    assert len(relay.received) == 1
    await desktop.close()


async def test_a_reply_the_relay_refused_or_could_not_take_is_on_the_timeline_marked_not_sent(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)
    await send_mail(port, customer_mail())
    offer = await _accepted_offer(mail_service, desktop)
    conversation_id = offer["reservation"]["conversation_id"]
    relay.refuse = "451 4.3.0 try later"
    error = await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "First"}, "error")
    assert error["error"]["code"] == "unavailable"
    relay.refuse = "550 5.7.1 no thanks"
    error = await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Second"}, "error")
    assert error["error"]["code"] == "invalid" and error["error"]["field"] == "text"
    relay.refuse = None
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Third"}, "replied")

    timeline = (await _card(mail_service, CUSTOMER))[1]["timeline"]
    outbound = [e for e in timeline if e["direction"] == "outbound"]
    assert [e["conversation_id"] for e in outbound] == [conversation_id] * 3
    third, second, first = (e["body"] for e in outbound)
    assert third == "Third"
    assert second.startswith("(not sent: the mail relay refused the reply: 550") and second.endswith("\n\nSecond")
    assert first.startswith("(not sent: the mail relay answered 451") and first.endswith("\n\nFirst")
    # Only the reply that left is `message.sent`; the others are `mail.failed`.
    async with asyncio.timeout(10):  # once the outbox relay has stamped them
        while True:
            async with mail_service.http.get(
                f"{mail_service.base_url}/api/v1/events", params={"after": "0"}, headers=mail_service.admin_headers()
            ) as response:
                kinds = [e["type"].removeprefix("org.contactcenter.") for e in (await response.json())["events"]]
            if "mail.sent" in kinds and "message.sent" in kinds:
                break
            await asyncio.sleep(0.05)
    assert kinds.count("message.sent") == 1 and kinds.count("mail.failed") == 2
    await desktop.close()


async def test_an_attachment_is_downloaded_by_the_agent_with_its_content_type_and_only_by_the_staff(
    mail_settings: Settings,
) -> None:
    settings = mail_settings.model_copy(update={"mail_max_attachment_bytes": 1000})
    async with run_service(settings) as service:
        await service.create_queue("support", ["email"])
        agent = await service.create_agent("Ann", ["support"])
        desktop = await service.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        mail = customer_mail(text="the invoice is attached")
        mail.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="facture n°1.pdf")
        mail.add_attachment(b"x" * 5000, maintype="image", subtype="png", filename="big.png")
        await send_mail(smtp_port(service), mail)
        offer = await _accepted_offer(service, desktop)
        body = offer["reservation"]["interaction"]["body"]
        links = re.findall(r"(/api/v1/email/attachments/[0-9a-f-]{36})", body)
        assert len(links) == 2 and "facture n°1.pdf (application/pdf, 16 bytes)" in body

        agent_headers = {"Authorization": f"Bearer {agent['token']}"}
        async with service.http.get(service.base_url + links[0], headers=agent_headers) as response:
            assert response.status == 200
            assert response.content_type == "application/pdf"
            assert await response.read() == b"%PDF-1.4 invoice"
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with service.http.get(service.base_url + links[1], headers=agent_headers) as response:
            assert response.status == 404  # past CC_MAIL_MAX_ATTACHMENT_BYTES: listed, not kept
        async with service.http.get(service.base_url + links[0]) as response:
            assert response.status == 401
        async with service.http.get(
            f"{service.base_url}/api/v1/email/attachments/not-a-uuid", headers=agent_headers
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "attachment_id"
        await desktop.close()


async def test_only_the_admin_and_the_agent_holding_the_conversation_download_an_unguessable_attachment(
    mail_service: RunningService,
) -> None:
    await mail_service.create_queue("support", ["email"])
    holder = await mail_service.create_agent("Ann", ["support"])
    desktop = await mail_service.agent_desktop(holder["token"])
    await desktop.command({"type": "state", "state": "available"}, "state")
    other = await mail_service.create_agent("Bob", ["support"])
    port = smtp_port(mail_service)
    mail = customer_mail(text="the invoice is attached")
    mail.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    await send_mail(port, mail)
    offer = await _accepted_offer(mail_service, desktop)
    (link,) = re.findall(r"(/api/v1/email/attachments/([0-9a-f-]{36}))", offer["reservation"]["interaction"]["body"])
    # Not derivable from the Message-ID and the attachment's place (what a uuid5 of them would be).
    derivable = uuid.uuid5(uuid.UUID("6d1d3c38-0c44-4e7d-9a3e-6b7c6f1f5a2e"), "order-1@customer.example\n0")
    assert link[1] != str(derivable)
    async with mail_service.http.get(
        f"{mail_service.base_url}/api/v1/email/attachments/{derivable}", headers=mail_service.admin_headers()
    ) as response:
        assert response.status == 404

    url = mail_service.base_url + link[0]
    async with mail_service.http.get(url, headers={"Authorization": f"Bearer {other['token']}"}) as response:
        assert response.status == 404  # another agent: not even told it exists
        assert (await response.json())["error"]["field"] == "attachment_id"
    async with mail_service.http.get(url, headers=mail_service.admin_headers()) as response:
        assert response.status == 200 and await response.read() == b"%PDF-1.4 invoice"
    async with mail_service.http.get(url, headers={"Authorization": f"Bearer {holder['token']}"}) as response:
        assert response.status == 200
    await desktop.command({"type": "complete", "conversation_id": offer["reservation"]["conversation_id"]}, "completed")
    # The agent who held it, after the conversation closed: still theirs to read.
    async with mail_service.http.get(url, headers={"Authorization": f"Bearer {holder['token']}"}) as response:
        assert response.status == 200 and await response.read() == b"%PDF-1.4 invoice"
    await desktop.close()


async def test_a_reply_from_another_address_and_a_bounce_of_our_reply_join_the_thread_without_joining_the_card(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)
    conversation_id, ours = await _answered_conversation(mail_service, relay, desktop, port, "On its way")

    colleague = customer_mail(
        sender="bob@customer.example",
        subject="Re: My order",
        text="I am Ann's colleague: it arrived.",
        message_id="<bob-1@customer.example>",
        headers=[("In-Reply-To", str(ours["Message-ID"]))],
    )
    await send_mail(port, colleague, sender="bob@customer.example")
    message = await desktop.receive("message")
    assert message["conversation_id"] == conversation_id
    assert message["interaction"]["from_address"] == "bob@customer.example"

    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        b"To: support@shop.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <dsn-1@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@shop.example\r\n"
        b"Message-ID: " + str(ours["Message-ID"]).encode() + b"\r\n\r\n--B--\r\n"
    )
    await send_mail(port, bounce, sender="")
    message = await desktop.receive("message")
    assert message["conversation_id"] == conversation_id
    assert "delivery failure report" in message["interaction"]["body"]

    card = (await _card(mail_service, CUSTOMER))[1]
    # Filed on Ann's card, as a claim: neither Bob nor the mailer daemon joined it.
    assert card["identities"] == [
        {
            "kind": "email",
            "value": CUSTOMER,
            "raw": CUSTOMER,
            "verified": False,
            "source": "contact",
            "flags": [],
            "shared": False,
        }
    ]
    assert len(card["timeline"]) == 4
    assert (await _card(mail_service, "bob@customer.example"))[0] == 404
    # The automated bounce was answered by nobody: only the agent's own reply left.
    assert len(relay.received) == 1
    await desktop.close()


async def test_an_answer_to_our_reply_to_address_threads_without_in_reply_to_or_references(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)
    conversation_id, ours = await _answered_conversation(mail_service, relay, desktop, port, "Which size?")
    assert ours["From"] == SUPPORT
    token_address = str(ours["Reply-To"])
    assert token_address.startswith("support+cc-") and token_address.endswith(f"@{OUR_DOMAIN}")

    # A client that keeps no threading headers, writing from another address, to the Reply-To.
    bare = customer_mail(sender="ann.home@other.example", subject="size", text="Large", message_id="<h1@other.example>")
    del bare["To"]
    bare["To"] = token_address
    await send_mail(port, bare, sender="ann.home@other.example", recipients=[token_address])
    message = await desktop.receive("message")
    assert message["conversation_id"] == conversation_id
    # The next reply still leaves from our plain address, to the one who wrote last.
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Noted"}, "replied")
    assert relay.received[1]["From"] == SUPPORT
    assert relay.received[1]["To"] == "ann.home@other.example"
    await desktop.close()


async def test_our_token_in_the_subject_threads_an_answer_without_threading_headers_or_address_tag(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)
    conversation_id, ours = await _answered_conversation(mail_service, relay, desktop, port, "Which size?")
    subject = str(ours["Subject"])
    assert re.fullmatch(r"Re: My order \[#cc-[0-9a-f]{32}\]", subject)

    # A client that strips In-Reply-To, References and the tagged Reply-To, writing from another address to our
    # plain address: only the subject is left, as the customer's client quoted it.
    bare = customer_mail(
        sender="ann.home@other.example", subject=f"RE: {subject}", text="Large", message_id="<h2@other.example>"
    )
    await send_mail(port, bare, sender="ann.home@other.example")
    message = await desktop.receive("message")
    assert message["conversation_id"] == conversation_id
    # The next reply carries one token, its own, not the one before it too.
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Noted"}, "replied")
    second = relay.received[1]
    token = str(second["Message-ID"]).strip("<>").partition("@")[0]
    assert second["Subject"] == f"Re: My order [#{token}]"
    await desktop.close()


def _auto_reply(sender: str, message_id: str, in_reply_to: str | None) -> EmailMessage:
    """What a vacation responder sends (RFC 3834): auto-submitted, answering the message it got."""
    headers = [("Auto-Submitted", "auto-replied"), ("X-Autoreply", "yes")]
    if in_reply_to is not None:
        headers.append(("In-Reply-To", in_reply_to))
    return customer_mail(
        sender=sender, subject="Out of office", text="I am away until Monday.", message_id=message_id, headers=headers
    )


async def test_two_auto_responders_bouncing_mail_through_us_never_open_work_nor_get_an_answer(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)
    conversation_id, ours = await _answered_conversation(mail_service, relay, desktop, port, "On its way")

    # The customer's responder answers our reply while the conversation is open: the agent holding it sees it.
    await send_mail(port, _auto_reply(CUSTOMER, "<ooo-1@customer.example>", str(ours["Message-ID"])))
    message = await desktop.receive("message")
    assert message["conversation_id"] == conversation_id
    await desktop.command({"type": "complete", "conversation_id": conversation_id}, "completed")

    # Then a second responder (a colleague's, copied) answers the same reply, and the first answers again: the
    # conversation is closed, and an automated mail opens no new one.
    await send_mail(
        port, _auto_reply("bob@customer.example", "<ooo-2@customer.example>", str(ours["Message-ID"])), sender=""
    )
    await send_mail(port, _auto_reply(CUSTOMER, "<ooo-3@customer.example>", "<ooo-2@customer.example>"))
    # Unthreaded automated mail: a responder of a stranger, a bounce of nothing of ours, and mail from our own
    # domain (a loop of our own, or a forgery) — kept, offered to no one.
    await send_mail(port, _auto_reply("robot@two.example", "<ooo-4@two.example>", None), sender="robot@two.example")
    bounce = (
        b"From: MAILER-DAEMON@mx.two.example\r\nTo: support@shop.example\r\nSubject: Undelivered\r\n"
        b"Message-ID: <dsn-9@mx.two.example>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n--B--\r\n"
    )
    await send_mail(port, bounce, sender="")
    own = customer_mail(sender=f"noreply@{OUR_DOMAIN}", subject="Your ticket", message_id="<own-1@shop.example>")
    await send_mail(port, own, sender=f"noreply@{OUR_DOMAIN}")

    # The next work the agent is offered is the next person's mail: none of the automated ones came first.
    ordinary = customer_mail(sender="carl@customer.example", message_id="<carl-1@customer.example>")
    await send_mail(port, ordinary, sender="carl@customer.example")
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["provider_id"] == "carl-1@customer.example"

    # Nothing answered any of them, and each is kept, marked automated.
    assert len(relay.received) == 1
    events = await _wait_for_mail_events(mail_service, 9)
    received = {data["message_id"]: data["automated"] for kind, data in events if kind == "mail.received"}
    assert received == {
        "order-1@customer.example": False,
        "ooo-1@customer.example": True,
        "ooo-2@customer.example": True,
        "ooo-3@customer.example": True,
        "ooo-4@two.example": True,
        "dsn-9@mx.two.example": True,
        "own-1@shop.example": True,
        "carl-1@customer.example": False,
    }
    for stranger in ("robot@two.example", f"noreply@{OUR_DOMAIN}"):
        assert (await _card(mail_service, stranger))[0] == 404
    timeline = (await _card(mail_service, CUSTOMER))[1]["timeline"]
    assert len(timeline) == 3  # the mail, our reply, the responder's answer while the conversation was open
    await desktop.close()


async def test_a_mail_that_cannot_be_read_at_all_still_reaches_an_agent_though_no_sender_was_read(
    mail_service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    desktop, port = await _support_desk(mail_service)

    def unreadable(*args: object, **kwargs: object) -> None:
        raise ValueError("the library gave up")

    # What the standard library cannot read at all (no sender read from it, so not "automated" by its headers).
    monkeypatch.setattr("email.message_from_bytes", unreadable)
    await send_mail(port, customer_mail(text="garbled"), sender="ann@customer.example")
    offer = await desktop.receive("offer")
    assert "could not be read" in offer["reservation"]["interaction"]["body"]
    assert offer["reservation"]["interaction"]["from_address"] == CUSTOMER
    await desktop.close()


async def test_a_reply_not_sent_has_its_own_event_naming_its_timeline_entry_and_why(
    mail_service: RunningService, relay: Relay
) -> None:
    desktop, port = await _support_desk(mail_service)
    await send_mail(port, customer_mail())
    offer = await _accepted_offer(mail_service, desktop)
    conversation_id = offer["reservation"]["conversation_id"]
    relay.refuse = "550 5.7.1 no thanks"
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Refused"}, "error")

    unsent = next(e for e in (await _card(mail_service, CUSTOMER))[1]["timeline"] if e["direction"] == "outbound")
    failed: list[dict[str, Any]] = []
    async with asyncio.timeout(10):  # once the outbox relay has stamped it
        while not failed:
            async with mail_service.http.get(
                f"{mail_service.base_url}/api/v1/events", params={"after": "0"}, headers=mail_service.admin_headers()
            ) as response:
                events = (await response.json())["events"]
            failed = [e for e in events if e["type"] == "org.contactcenter.message.failed"]
            await asyncio.sleep(0.05)
    assert len(failed) == 1
    data = failed[0]["data"]
    assert (data["interaction_id"], data["conversation_id"], data["channel"]) == (
        unsent["id"],
        conversation_id,
        "email",
    )
    assert data["agent_id"] == desktop.agent_id and data["reason"].startswith("the mail relay refused the reply: 550")
    assert not any(e["type"] == "org.contactcenter.message.sent" for e in events)
    await desktop.close()


async def test_after_a_conversation_passes_to_another_agent_its_attachments_are_the_new_holders_only(
    mail_service: RunningService,
) -> None:
    await mail_service.create_queue("support", ["email"])
    first = await mail_service.create_agent("Ann", ["support"])
    second = await mail_service.create_agent("Bob", ["support"])
    desktop = await mail_service.agent_desktop(first["token"])
    await desktop.command({"type": "state", "state": "available"}, "state")
    mail = customer_mail(text="the invoice is attached")
    mail.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    await send_mail(smtp_port(mail_service), mail)
    offer = await _accepted_offer(mail_service, desktop)
    (link,) = re.findall(r"/api/v1/email/attachments/[0-9a-f-]{36}", offer["reservation"]["interaction"]["body"])
    url = mail_service.base_url + link

    # The conversation passes to Bob (what a transfer will do: the conversation's holder changes).
    conversation_id = uuid.UUID(offer["reservation"]["conversation_id"])
    await mail_service.services.conversations.assign(conversation_id, uuid.UUID(second["id"]))

    async with mail_service.http.get(url, headers={"Authorization": f"Bearer {second['token']}"}) as response:
        assert response.status == 200 and await response.read() == b"%PDF-1.4 invoice"
    async with mail_service.http.get(url, headers={"Authorization": f"Bearer {first['token']}"}) as response:
        assert response.status == 404
    await desktop.close()
