"""Settings, read once from the environment (and a `.env` file) with the `CC_` prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A list given in the environment as "a.example, b.example" (a JSON list works too).
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", env_file=".env", extra="ignore")

    # Unset URLs mean embedded defaults: pgserver, fakeredis, the in-process bus.
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    amqp_url: SecretStr | None = None

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    smtp_port: int = 2525
    public_url: str | None = None
    admin_token: SecretStr | None = None

    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_api_base: str = "https://api.twilio.com"
    smtp_relay_url: SecretStr | None = None
    mail_domains: CommaList = Field(default_factory=list)
    default_region: str = "US"

    # Origins allowed to open the agent and chat sockets, besides the service's own.
    allowed_origins: CommaList = Field(default_factory=list)
    # Names of exchanges, queues and Redis keys start with this; tests give each run its own.
    namespace: str = "cc"
    # PostgreSQL schema the tables live in.
    database_schema: str = "public"
    # Where embedded mode keeps its PostgreSQL data.
    data_dir: Path = Path("var")

    reservation_timeout_seconds: float = 30.0
    # How often routers check that Redis still holds live state (and rebuild it from PostgreSQL if not).
    live_check_seconds: float = 2.0
    # The longest wait for the broker's confirm (then a 503 to the provider), and for Redis to confirm that a
    # gateway hears a connecting agent's notices (then the desktop is told to connect again).
    publish_timeout_seconds: float = 5.0
    # Contacts an API process takes in from webhooks at once; past it, providers get a 503 and retry.
    webhook_concurrency: int = Field(default=200, ge=1)
    # Contacts of one channel an API process publishes together in one message when they arrive while earlier
    # ones wait for the broker (1: each alone, as routers before batches expect during a rolling upgrade).
    inbound_batch: int = Field(default=64, ge=1)
    # Deliveries a router holds at once (0 would mean no bound at all to RabbitMQ); 32, 128 and 512 carried the
    # same at the ceiling on two cores.
    router_prefetch: int = Field(default=32, ge=1)
    # Redeliveries of a failing interaction before it is dead-lettered (0: none).
    delivery_limit: int = Field(default=5, ge=0)
    # Per connection (contactcenter.connections): a new connection must have sent its request line and headers
    # within `header_read_seconds`, a request its body within `body_read_seconds` of its headers (else 408 and
    # the connection closes); a kept-alive connection waits `idle_connection_seconds` for its next request, and
    # one whose unsent answers the client does not take for as long is dropped.
    header_read_seconds: float = Field(default=10.0, gt=0)
    body_read_seconds: float = Field(default=10.0, gt=0)
    idle_connection_seconds: float = Field(default=75.0, gt=0)
    # Connections one client address may hold at once; past it a new one gets a 503 and is closed. Behind a
    # proxy or load balancer the client is the proxy: keep this above what it opens.
    max_connections_per_client: int = Field(default=256, ge=1)
    log_level: str = "INFO"
    # `json` (one object per line, for a log collector) or `text` (for a person); unset: text in embedded mode
    # or at a terminal, JSON otherwise.
    log_format: Literal["json", "text"] | None = None
    # When set, `GET /metrics` asks for `Authorization: Bearer <token>`: the port that serves it faces Twilio.
    metrics_token: SecretStr | None = None

    @field_validator("mail_domains", "allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @property
    def embedded(self) -> bool:
        return self.database_url is None and self.redis_url is None and self.amqp_url is None
