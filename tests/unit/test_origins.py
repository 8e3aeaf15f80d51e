"""The origins allowed to open the agent socket: compared normalised, made only of settings."""

from __future__ import annotations

import pytest

from contactcenter.origins import origin_of, web_origins
from contactcenter.settings import Settings


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://CC.Example.com", "https://cc.example.com:443"),
        ("https://cc.example.com:443/", "https://cc.example.com:443"),
        ("http://cc.example.com/twilio/path?q=1", "http://cc.example.com:80"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("null", None),
        ("file:///etc/passwd", None),
        ("http://cc.example.com:99999", None),
        ("cc.example.com", None),
        ("", None),
    ],
)
def test_an_origin_is_scheme_host_and_port_normalised(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_without_a_public_url_the_service_is_its_loopback_address_in_each_spelling() -> None:
    settings = Settings(_env_file=None, http_host="127.0.0.1", http_port=8091)
    assert web_origins(settings) == {"http://127.0.0.1:8091", "http://localhost:8091", "http://[::1]:8091"}


def test_a_public_url_replaces_the_listening_address_and_the_allow_list_adds_to_it() -> None:
    settings = Settings(_env_file=None, public_url="https://cc.example.com/", allowed_origins="https://desk.example")
    assert web_origins(settings) == {"https://cc.example.com:443", "https://desk.example:443"}


def test_a_host_that_is_not_loopback_is_itself_only() -> None:
    assert web_origins(Settings(_env_file=None, http_host="10.0.0.5", http_port=80)) == {"http://10.0.0.5:80"}
