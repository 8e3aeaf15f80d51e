"""The bench drives chat: visitors on real sockets in the traffic mix (stored once each, none lost), and the
chat bench's latencies both ways and idle sockets per GiB. (It proves the commands, not a speed.)"""

from __future__ import annotations

from tests.e2e.test_bench import _bench


async def test_the_traffic_mix_sends_chat_on_visitors_sockets_and_every_acknowledged_message_is_stored_once() -> None:
    _, result = await _bench(
        "--rate",
        "20",
        "--duration",
        "2",
        "--agents",
        "5",
        "--customers",
        "30",
        "--mix",
        "sms=1,chat=1",
        "--skip-raw",
    )
    assert result["mix"] == {"sms": 0.5, "chat": 0.5}
    assert result["sent"] == result["acknowledged"] == 40
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["waiting_for_agent_at_end"] == 0
    assert result["agent_errors"] == {} and result["client_failures"] == {}


async def test_the_chat_bench_gives_both_latencies_and_idle_sockets_per_gib() -> None:
    _, result = await _bench("--chats", "10", "--rate", "10", "--agents", "2", "--idle", "50", module="bench.chat")
    assert result["acknowledged"] == 10 and result["errors"] == []
    for direction in ("visitor_to_agent_ms", "agent_to_visitor_ms"):
        assert set(result[direction]) == {"p50", "p95", "max"} and result[direction]["p50"] > 0
    assert result["idle_sockets"] == 50
