"""Found by faults of PostgreSQL: an agent's accept that reached Redis but not PostgreSQL. The desktop is
told to try again; trying again must work — before, the reservation was gone from Redis, the retry answered
"not found", and the agent held work it could neither see nor complete, with no capacity left for offers."""

from __future__ import annotations

import uuid

import pytest

from contactcenter.settings import Settings
from contactcenter.store.conversations import Closed, Conversations
from tests.running import run_service


async def test_an_accept_cut_short_by_postgresql_can_be_retried_and_the_work_completed(
    service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assign = Conversations.assign
    failed: list[uuid.UUID] = []

    async def postgres_restarts_once(self: Conversations, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        if not failed:
            failed.append(conversation_id)
            raise ConnectionResetError("the connection was reset by PostgreSQL's restart")
        await assign(self, conversation_id, agent_id)

    monkeypatch.setattr(Conversations, "assign", postgres_restarts_once)
    async with run_service(service_settings) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        assert (await service.post_sms(sender="+14155550101", body="first")).status == 200
        offer = await desktop.receive("offer")
        accept = {"type": "accept", "reservation_id": offer["reservation"]["id"]}

        told = await desktop.command(accept, "error")
        assert told["error"]["code"] == "unavailable", told
        accepted = await desktop.command(accept, "accepted")
        assert accepted["conversation_id"] == offer["reservation"]["conversation_id"]
        await desktop.command({"type": "complete", "conversation_id": accepted["conversation_id"]}, "completed")

        # The agent's capacity is free again: the next contact is offered.
        assert (await service.post_sms(sender="+14155550102", body="second")).status == 200
        second = await desktop.receive("offer")
        assert second["reservation"]["interaction"]["body"] == "second"
        await desktop.close()


async def test_a_complete_whose_answer_postgresql_lost_can_be_retried_and_frees_the_agent(
    service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by resets of the PostgreSQL connection: the close was committed, its answer lost; the retry was
    "not found", and live state kept the agent busy for ever."""
    close = Conversations.close
    lost: list[uuid.UUID] = []

    async def answer_lost_once(self: Conversations, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> Closed:
        closed = await close(self, conversation_id, agent_id)
        if not lost:
            lost.append(conversation_id)
            raise ConnectionResetError("the connection was reset before the answer came")
        return closed

    monkeypatch.setattr(Conversations, "close", answer_lost_once)
    async with run_service(service_settings) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        assert (await service.post_sms(sender="+14155550101", body="first")).status == 200
        offer = await desktop.receive("offer")
        accepted = await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        complete = {"type": "complete", "conversation_id": accepted["conversation_id"]}

        told = await desktop.command(complete, "error")
        assert told["error"]["code"] == "unavailable", told
        await desktop.command(complete, "completed")

        assert (await service.post_sms(sender="+14155550102", body="second")).status == 200
        second = await desktop.receive("offer")
        assert second["reservation"]["interaction"]["body"] == "second"
        await desktop.close()
