"""Settings come from CC_* variables; lists may be written as comma lists or JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from contactcenter.cli import main
from contactcenter.settings import Settings


def test_lists_are_read_from_comma_lists_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_MAIL_DOMAINS", "support.example.com, sales.example.com")
    monkeypatch.setenv("CC_ALLOWED_ORIGINS", '["https://desk.example.com"]')
    settings = Settings(_env_file=None)
    assert settings.mail_domains == ["support.example.com", "sales.example.com"]
    assert settings.allowed_origins == ["https://desk.example.com"]


def test_no_service_url_means_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CC_DATABASE_URL", "CC_REDIS_URL", "CC_AMQP_URL"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(_env_file=None).embedded
    monkeypatch.setenv("CC_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    assert not Settings(_env_file=None).embedded


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_DATABASE_URL", "postgresql://cc:hunter2@db/cc")
    monkeypatch.setenv("CC_TWILIO_AUTH_TOKEN", "twilio-secret")
    shown = repr(Settings(_env_file=None))
    assert "hunter2" not in shown
    assert "twilio-secret" not in shown


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CC_WEBHOOK_CONCURRENCY", "0"),
        ("CC_HTTP_PORT", "eighty"),
        ("CC_ROUTER_PREFETCH", "0"),
        ("CC_DELIVERY_LIMIT", "-1"),
        ("CC_INBOUND_BATCH", "0"),
        ("CC_LOG_FORMAT", "yaml"),
    ],
)
def test_a_bad_setting_stops_the_command_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        main(["serve"])
    assert isinstance(stopped.value.code, str) and name in stopped.value.code
