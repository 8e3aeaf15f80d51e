"""What an operator sees of one SMS: its path in the logs of every hop, and the metrics a scrape reads."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from contactcenter.host.app import Role
from contactcenter.logs import JsonFormatter
from contactcenter.settings import Settings
from tests.running import RunningService, run_service

SENDER = "(415) 555-0134"
SENDER_DIGITS = "4155550134"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Everything the service logs at INFO and above, as the production formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_one_sms_can_be_followed_by_its_interaction_id_through_adapter_router_and_gateway(
    service_settings: Settings, json_logs: io.StringIO
) -> None:
    """As in production, the router runs apart from the API: the offer reaches the gateway through Redis, and
    the gateway's lines still name the interaction."""
    async with run_service(service_settings, Role.API) as api, run_service(service_settings, Role.ROUTER):
        await api.create_queue("sales", ["sms"])
        desktop = await api.available_agent()

        assert (await api.post_sms(sender=SENDER, body="Is my car ready?")).status == 200
        offer = await desktop.receive("offer")
        interaction_id = offer["reservation"]["interaction"]["id"]
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        await desktop.close()

    path = [line for line in _lines(json_logs) if line.get("interaction_id") == interaction_id]
    loggers = {line["logger"] for line in path}
    assert {"channels.twilio.sms", "routing.router", "contactcenter.agents.gateway"} <= loggers, path
    gateway_lines = [line for line in path if line["logger"] == "contactcenter.agents.gateway"]
    assert all(line["agent_id"] == desktop.agent_id for line in gateway_lines)
    # The offer's own hop, not only the agent's answer to it.
    assert any(line["message"] == "notice passed to the agent's socket" for line in gateway_lines), path
    assert any(line.get("conversation_id") == offer["reservation"]["conversation_id"] for line in path)
    text = json_logs.getvalue()
    assert SENDER_DIGITS not in text
    assert "Is my car ready?" not in text


def _samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def _scrape(service: RunningService, headers: dict[str, str] | None = None) -> str:
    async with service.http.get(f"{service.base_url}/metrics", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        return await response.text()


async def test_a_scrape_after_one_sms_shows_it_taken_in_routed_and_waiting(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    desktop = await service.agent_desktop(agent["token"])
    await desktop.command({"type": "state", "state": "away"}, "state")
    assert (await service.post_sms(sender=SENDER, body="anyone?")).status == 200
    assert (await service.post_sms(sender=SENDER, body="still there?")).status == 200
    forged = await service.post_twilio("/channels/twilio/sms", {"From": SENDER}, signature="forged")
    assert forged.status == 403

    routed = ("cc_interactions_routed_total", (("channel", "sms"), ("outcome", "queued")))
    async with asyncio.timeout(10):
        while (samples := _samples(await _scrape(service))).get(routed) != 2:
            await asyncio.sleep(0.05)
    assert samples[("cc_webhooks_received_total", (("channel", "sms"),))] == 3
    assert samples[("cc_webhooks_refused_total", (("channel", "sms"), ("reason", "forbidden")))] == 1
    assert samples[("cc_interactions_published_total", (("channel", "sms"),))] == 2
    assert samples[("cc_publish_seconds_count", (("channel", "sms"),))] == 2
    assert samples[("cc_routing_seconds_count", (("channel", "sms"),))] == 2
    # The second SMS joined the first one's conversation: one conversation waits.
    assert samples[("cc_queue_waiting", (("queue", "sales"),))] == 1
    assert samples[("cc_agents", (("state", "away"),))] == 1
    assert samples[("cc_http_responses_total", (("status_class", "4xx"),))] == 1
    assert samples[("cc_bus_up", ())] == 1
    assert samples[("cc_redis_up", ())] == 1
    assert samples[("cc_live_state_read", ())] == 1
    assert samples[("cc_database_pool_connections", ())] >= 1
    assert SENDER_DIGITS not in await _scrape(service)
    await desktop.close()


async def test_metrics_ask_for_the_bearer_token_when_one_is_set(service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    async with run_service(settings) as service:
        async with service.http.get(f"{service.base_url}/metrics") as response:
            assert response.status == 401
            assert (await response.json())["error"]["field"] == "Authorization"
        wrong = {"Authorization": "Bearer guess"}
        async with service.http.get(f"{service.base_url}/metrics", headers=wrong) as response:
            assert response.status == 401
        assert "cc_webhooks_received" in await _scrape(service, {"Authorization": "Bearer scrape-me"})


async def test_a_scrape_counts_an_interaction_that_failed_past_the_delivery_limit(service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"delivery_limit": 0})
    async with run_service(settings) as service:
        topology = service.services.topology
        await service.services.bus.publish(
            topology.interactions, "interaction.sms.inbound", b"not an interaction", message_id="poison", mandatory=True
        )
        dead = ("cc_dead_letters_waiting", ())
        async with asyncio.timeout(10):
            while (samples := _samples(await _scrape(service))).get(dead) != 1:
                await asyncio.sleep(0.05)
        assert samples[("cc_routing_failures_total", (("channel", "unreadable"),))] == 1
