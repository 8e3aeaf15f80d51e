"""The webhook rules that need no I/O: which routing keys a pattern takes, when a failed delivery is tried
again, which addresses deliveries may reach, and the signature a receiver checks."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactcenter.webhooks.backoff import parse_retry_after, retry_delay
from contactcenter.webhooks.destinations import is_public
from contactcenter.webhooks.patterns import matches, types_regex
from contactcenter.webhooks.signing import signature, verify


@pytest.mark.parametrize(
    ("patterns", "key", "wanted"),
    [
        (["interaction.*"], "interaction.received", True),
        (["interaction.*"], "interaction", False),
        (["interaction.*"], "interaction.received.again", False),
        (["interaction.*"], "reservation.created", False),
        (["interaction.#"], "interaction", True),
        (["interaction.#"], "interaction.a.b", True),
        (["#"], "client.merged", True),
        (["*.created"], "reservation.created", True),
        (["*.created"], "reservation.expired", False),
        (["#.created"], "created", True),
        (["agent.state_changed"], "agent.state_changed", True),
        (["agent.state_changed"], "agent.state-changed", False),
        (["client.created", "identity.*"], "identity.added", True),
        (["interaction.received"], "interactionXreceived", False),  # the dot is a dot, not any character
    ],
)
def test_patterns_match_routing_keys_as_amqp_topics_do(patterns: list[str], key: str, wanted: bool) -> None:
    assert matches(types_regex(patterns), key) is wanted


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0.001, max_value=10))
def test_a_retry_waits_at_most_the_doubled_base_and_never_past_the_cap(attempts: int, base: float) -> None:
    delay = retry_delay(attempts, base=base, cap=60.0)
    assert 0 <= delay <= min(60.0, base * 2 ** min(attempts - 1, 60))


def test_a_retry_waits_at_least_what_retry_after_asks_up_to_the_cap() -> None:
    assert retry_delay(1, base=0.001, cap=60.0, retry_after=30.0) >= 30.0
    assert retry_delay(1, base=0.001, cap=60.0, retry_after=86400.0) <= 60.0


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::",
    ],
)
def test_loopback_private_link_local_multicast_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_internet_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_the_signature_is_the_contracts_hmac_of_timestamp_dot_body() -> None:
    body = b'{"id":"1"}'
    header = signature("whsec_x", body, 1767225600)
    expected = hmac.new(b"whsec_x", b"1767225600." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1767225600,v1={expected}"
    assert verify("whsec_x", body, header)
    assert not verify("whsec_y", body, header)
    assert not verify("whsec_x", body + b" ", header)
    assert not verify("whsec_x", body, "t=1767225601," + header.split(",")[1])
    assert not verify("whsec_x", body, "nonsense")


def test_the_verification_in_the_docs_accepts_our_signature_and_refuses_a_forgery() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    code = docs.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the docs' own example, as an integrator copies it
    body, now = b'{"id":"42"}', int(time.time())
    assert namespace["verified"]("whsec_x", body, signature("whsec_x", body, now))
    assert not namespace["verified"]("whsec_x", body + b"!", signature("whsec_x", body, now))
    assert not namespace["verified"]("whsec_x", body, signature("whsec_x", body, now - 3600))  # too old
