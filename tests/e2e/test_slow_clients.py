"""Slow and abusive clients cannot starve the intake: connections that hold the service without finishing their
request are cut off at their deadlines, and signed webhooks go on being taken in meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from contactcenter.settings import Settings
from contactcenter.store.cards import Cards
from schema import ClientCard, IdentityKind
from tests.running import RunningService, run_service

SMS_PATH = "/channels/twilio/sms"


class RawClient:
    """A client on a bare TCP socket, sending exactly what an attacker would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_the_service(self, timeout: float = 10) -> bytes:
        """What the service said before it closed the connection (b"" for nothing)."""
        async with asyncio.timeout(timeout):
            return await self.reader.read()


@contextlib.asynccontextmanager
async def raw_clients(service: RunningService, count: int) -> AsyncIterator[list[RawClient]]:
    host, port = service.base_url.removeprefix("http://").split(":")
    clients = [RawClient(*await asyncio.open_connection(host, int(port))) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            client.writer.close()


def sms_head(service: RunningService, content_length: int) -> bytes:
    host = service.base_url.removeprefix("http://")
    return (
        f"POST {SMS_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {content_length}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: bm90IGEgc2lnbmF0dXJl\r\n\r\n"
    ).encode()


async def card_when_stored(cards: Cards, number: str, timeout: float = 10) -> ClientCard:
    async with asyncio.timeout(timeout):
        while (card := await cards.by_identity(IdentityKind.PHONE, number)) is None:
            await asyncio.sleep(0.02)
    return ClientCard.model_validate_json(card)


async def test_slow_bodies_past_the_admission_bound_do_not_keep_signed_sms_out(service_settings: Settings) -> None:
    """The attack of issue 13: more slow bodies than the admission bound, held open. Genuine SMS still get in."""
    async with run_service(service_settings.model_copy(update={"webhook_concurrency": 5})) as service:
        await service.create_queue("sales", ["sms"])
        async with raw_clients(service, 20) as slow:
            for client in slow:
                await client.send(sms_head(service, 100_000) + b"From=%2B1415")
            for number in ("+14155550140", "+14155550141", "+14155550142"):
                response = await service.post_sms(sender=number, body="still there?")
                assert response.status == 200, await response.text()
            for number in ("+14155550140", "+14155550141", "+14155550142"):
                card = await card_when_stored(service.services.cards, number)
                assert [entry.body for entry in card.timeline] == ["still there?"]
