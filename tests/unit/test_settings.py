"""Settings come from CC_* variables; lists may be written as comma lists or JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from contactcenter.host import cli
from contactcenter.host.cli import main
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


def _must_not_serve(*args: object) -> None:
    pytest.fail("the command went on to serve with a bad setting")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CC_WEBHOOK_CONCURRENCY", "0"),
        ("CC_HTTP_PORT", "eighty"),
        ("CC_ROUTER_PREFETCH", "0"),
        ("CC_DELIVERY_LIMIT", "-1"),
        ("CC_INBOUND_BATCH", "0"),
        ("CC_LOG_FORMAT", "yaml"),
        ("CC_RESERVATION_TIMEOUT_SECONDS", "-5"),
        ("CC_RESERVATION_TIMEOUT_SECONDS", "0"),
        ("CC_PUBLISH_TIMEOUT_SECONDS", "0"),
        ("CC_LIVE_CHECK_SECONDS", "-1"),
        ("CC_EVENT_SWEEP_SECONDS", "0"),
        ("CC_EVENT_BATCH", "0"),
        ("CC_EVENT_RETENTION_DAYS", "0"),
        ("CC_EVENT_RETENTION_DAYS", "thirty"),
        ("CC_WEBHOOK_DELIVERED_RETENTION_HOURS", "0"),
        ("CC_WEBHOOK_DELIVERED_RETENTION_HOURS", "-1"),
        ("CC_HTTP_PORT", "99999"),
        ("CC_HTTP_PORT", "-1"),
        ("CC_SMTP_PORT", "70000"),
        ("CC_WEBHOOK_CONCURRENCY", "-3"),
        ("CC_ROUTER_PREFETCH", "70000"),
        ("CC_DATABASE_URL", "mysql://db/cc"),
        ("CC_REDIS_URL", "http://127.0.0.1:6379"),
        ("CC_AMQP_URL", "127.0.0.1:5672"),
        ("CC_PUBLIC_URL", "ftp://example.com"),
        ("CC_PUBLIC_URL", "example.com/hooks"),
        ("CC_TWILIO_API_BASE", "api.twilio.com"),
        ("CC_LOG_LEVEL", "verbose"),
        ("CC_DEFAULT_REGION", "XX"),
        ("CC_DATABASE_SCHEMA", "public; drop table clients"),
        ("CC_CHAT_TIMEZONE", "Mars/Olympus"),
        ("CC_CHAT_HOURS", "weekdays 9 to 5"),  # read by the chat channel's own grammar
        ("CC_CHAT_HOURS", "mon-fri 17:00-09:00"),
        ("CC_ALLOWED_ORIGINS", "desk.example.com"),  # no scheme: no origin, which was dropped without a word
        ("CC_ALLOWED_ORIGINS", "https://desk.example, ftp://files.example"),
        ("CC_ALLOWED_ORIGINS", "https://desk.example:99999"),
        ("CC_ALLOWED_ORIGINS", "https://desk.example, null"),  # sandboxed pages and files: never allowed
    ],
)
def test_a_bad_setting_stops_the_command_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli, "serve", _must_not_serve)
    with pytest.raises(SystemExit) as stopped:
        main(["serve"])
    assert isinstance(stopped.value.code, str) and name in stopped.value.code


def test_a_bad_service_url_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CC_DATABASE_URL", "mysql://cc:hunter2@db/cc")
    monkeypatch.setattr(cli, "serve", _must_not_serve)
    with pytest.raises(SystemExit) as stopped:
        main(["serve"])
    assert isinstance(stopped.value.code, str) and "CC_DATABASE_URL" in stopped.value.code
    assert "hunter2" not in stopped.value.code


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CC_HTTP_PORT", "0"),  # any free port: what tests use
        ("CC_HTTP_PORT", "65535"),
        ("CC_DATABASE_URL", "postgres://cc@db/cc"),
        ("CC_DATABASE_URL", "postgresql://postgres:@/postgres?host=/tmp/pg"),
        ("CC_REDIS_URL", "rediss://cache:6380/0"),
        ("CC_REDIS_URL", "unix:///run/redis.sock"),
        ("CC_AMQP_URL", "amqps://guest:guest@mq/"),
        ("CC_PUBLIC_URL", "https://cc.example.com"),
        ("CC_LOG_LEVEL", "debug"),
        ("CC_DEFAULT_REGION", "fr"),
        ("CC_DELIVERY_LIMIT", "0"),
        ("CC_CHAT_TIMEZONE", "Europe/Paris"),
        ("CC_CHAT_HOURS", "mon-fri 09:00-17:00; sat 10:00-14:00"),
        ("CC_ALLOWED_ORIGINS", "https://desk.example:8443, http://localhost:3000"),
    ],
)
def test_sensible_settings_are_taken(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    Settings(_env_file=None)


def test_settings_cannot_change_once_read() -> None:
    settings = Settings(_env_file=None)
    with pytest.raises(ValidationError):
        settings.http_port = 9090  # type: ignore[misc]  # frozen on purpose: mypy says so too
