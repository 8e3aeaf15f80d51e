"""Settings, read once from the environment (and a `.env` file) with the `CC_` prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import phonenumbers
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schema.text import TimeZoneName

# A list given in the environment as "a.example, b.example" (a JSON list works too).
CommaList = Annotated[list[str], NoDecode]

# What each client library accepts.
SERVICE_SCHEMES = {
    "database_url": {"postgresql", "postgres"},
    "redis_url": {"redis", "rediss", "unix"},
    "amqp_url": {"amqp", "amqps"},
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    # Frozen: read once at start-up, handed out to everything; a change is a new copy (`model_copy`).
    model_config = SettingsConfigDict(env_prefix="CC_", env_file=".env", extra="ignore", frozen=True)

    # Unset URLs mean embedded defaults: pgserver, fakeredis, the in-process bus.
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    amqp_url: SecretStr | None = None

    http_host: str = "127.0.0.1"
    # 0: any free port (tests).
    http_port: int = Field(default=8080, ge=0, le=65535)
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    public_url: str | None = None
    admin_token: SecretStr | None = None

    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_api_base: str = "https://api.twilio.com"
    # Voice (channels/twilio/voice*.py): the API key and TwiML app agents' Voice access tokens are signed with
    # and name (unset: `POST /api/v1/voice/token` answers 503), and how long such a token lasts.
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: SecretStr = SecretStr("")
    twilio_twiml_app_sid: str = ""
    voice_token_seconds: int = Field(default=3600, ge=60, le=86400)
    # A connected call occupies its agent on every channel until its final status; should that status never come
    # (a lost callback), the agent is freed this long after the call was connected.
    voice_max_call_seconds: int = Field(default=14400, ge=60, le=86400)
    # After completing work an agent is in wrap-up this long (offered nothing) unless it says it is ready
    # sooner; 0: none, the agent is offered the next contact at once.
    wrap_up_seconds: int = Field(default=0, ge=0, le=3600)
    smtp_relay_url: SecretStr | None = None
    mail_domains: CommaList = Field(default_factory=list)
    default_region: str = "US"

    # Origins allowed to open the agent and chat sockets, besides the service's own.
    allowed_origins: CommaList = Field(default_factory=list)
    # Names of exchanges, queues and Redis keys start with this; tests give each run its own.
    namespace: str = Field(default="cc", pattern=r"^[A-Za-z0-9_-]{1,50}$")
    # PostgreSQL schema the tables live in; a plain identifier, as `store.open_pool` requires.
    database_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Where embedded mode keeps its PostgreSQL data.
    data_dir: Path = Path("var")
    # Embedded mode's first start on an empty database loads the demo center (contactcenter/host/demo.py) and
    # prints its pages and tokens; false leaves the database empty.
    demo_on_first_start: bool = True

    # Upper bounds catch a unit mistake (milliseconds written for seconds) rather than any real need.
    reservation_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # How often routers check that Redis still holds live state (and rebuild it from PostgreSQL if not).
    live_check_seconds: float = Field(default=2.0, gt=0, le=3600)
    # The longest wait for the broker's confirm (then a 503 to the provider), and for Redis to confirm that a
    # gateway hears a connecting agent's notices (then the desktop is told to connect again).
    publish_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # How long a starting process waits for PostgreSQL, Redis and the broker to answer (starting again from
    # scratch after each failure) before it gives up and exits.
    start_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Contacts an API process takes in from webhooks at once; past it, providers get a 503 and retry.
    webhook_concurrency: int = Field(default=200, ge=1, le=100_000)
    # Contacts of one channel an API process publishes together in one message when they arrive while earlier
    # ones wait for the broker (1: each alone, as routers before batches expect during a rolling upgrade).
    inbound_batch: int = Field(default=64, ge=1, le=10_000)
    # Deliveries a router holds at once (0 would mean no bound at all to RabbitMQ); 32, 128 and 512 carried the
    # same at the ceiling on two cores.
    # AMQP carries the prefetch count in 16 bits.
    router_prefetch: int = Field(default=32, ge=1, le=65535)
    # Redeliveries of a failing interaction before it is dead-lettered (0: none).
    delivery_limit: int = Field(default=5, ge=0, le=1000)
    # Per connection (contactcenter.host.connections): a new connection must have sent its request line and headers
    # within `header_read_seconds`, a request its body within `body_read_seconds` of its headers (else 408 and
    # the connection closes); a kept-alive connection waits `idle_connection_seconds` for its next request, and
    # one whose unsent answers the client does not take for as long is dropped.
    header_read_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_read_seconds: float = Field(default=10.0, gt=0, le=3600)
    idle_connection_seconds: float = Field(default=75.0, gt=0, le=86400)
    # Connections one client address may hold at once; past it a new one gets a 503 and is closed. Behind a
    # proxy or load balancer the client is the proxy: keep this above what it opens.
    max_connections_per_client: int = Field(default=256, ge=1, le=1_000_000)
    # Events (contactcenter/events): the relay's backstop sweep when no notification wakes it (and a standby
    # relay's look at the lock), how long it lets events gather after a round that published some (the lag it
    # adds, against a round per change under load: docs/performance.md), the events it
    # publishes per round, and how long published events stay in the log (`GET /api/v1/events`).
    # Off: no events at all — the changes write none (migration 020), no relay, no webhooks; for a center with no
    # other system to tell, and the bench's comparison (`python -m bench --no-events`).
    events: bool = True
    event_sweep_seconds: float = Field(default=1.0, gt=0, le=3600)
    event_linger_seconds: float = Field(default=0.02, ge=0, le=10)
    event_batch: int = Field(default=500, ge=1, le=10_000)
    event_retention_days: int = Field(default=30, ge=1, le=36_500)
    # Whether a router process (and `--role all`) runs the event relay too. False where `--role relay` processes
    # do it (docs/events.md, "The relay"): the relay then shares no event loop with the router's work.
    router_relays: bool = True
    # Webhooks (contactcenter/webhooks): deliveries reach only public addresses unless private ones are allowed
    # (tests, a receiver on the premises). A receiver answers within the timeout or the try failed; a failed
    # delivery is tried again after `retries` more backoffs (base doubling up to max, full jitter), then parked.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_retries: int = Field(default=8, ge=0, le=100)
    webhook_retry_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=600.0, gt=0, le=86400)
    # The most deliveries one webhook may have waiting (pending or retrying): past it the webhook is suspended,
    # its line parked for a replay and its events no longer recorded until then (docs/webhooks.md).
    webhook_max_pending: int = Field(default=10_000, ge=1, le=10_000_000)
    # How often a dispatcher looks for deliveries it was not told of (another process's, a replay's).
    webhook_scan_seconds: float = Field(default=1.0, gt=0, le=3600)
    # How long a delivered webhook delivery is kept (the same event, redelivered by the bus meanwhile, is not sent
    # again); parked ones stay until replayed, or as long as the events (`event_retention_days`).
    webhook_delivered_retention_hours: float = Field(default=24.0, gt=0, le=876_000)
    # How long an erased card's identity tombstones are kept (docs/cards.md, "Privacy"): longer than a contact
    # received before the erasure may wait on the bus to be recorded; after it, a contact is a stranger's. Purged
    # by the retention job with the events.
    identity_tombstone_retention_hours: float = Field(default=72.0, gt=0, le=876_000)
    # Email (channels/email): the largest message taken in (552 past it, before the rest is read), the
    # recipients one message may name, the SMTP connections one client address (and all together) may hold at
    # once, the longest one connection may last whatever it sends (a NOOP every few minutes restarts the idle
    # clock: without it ten addresses could hold every connection for ever), STARTTLS
    # when a certificate and its key are given, the authserv-id of the relay whose Authentication-Results
    # header we trust (DMARC pass there verifies the sender's address; unset: every address is a claim), the
    # largest attachment kept (a larger one is listed, not stored) and the tries of a reply on a relay that
    # refuses for now or does not answer.
    smtp_max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    smtp_max_recipients: int = Field(default=50, ge=1, le=10_000)
    smtp_connections_per_client: int = Field(default=20, ge=1, le=100_000)
    smtp_max_connections: int = Field(default=200, ge=1, le=100_000)
    smtp_session_seconds: float = Field(default=1800.0, ge=1.0, le=86_400.0)
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    mail_trusted_authserv_id: str = ""
    mail_max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=0, le=1024 * 1024 * 1024)
    smtp_relay_tries: int = Field(default=3, ge=1, le=20)
    # Whether a reply quotes the customer's message it answers ("On …, … wrote:" and `>` lines).
    mail_quote_history: bool = True
    # Mailboxes the IMAP poller takes mail from (roles smtp and all), comma-separated
    # `imap://user:password@host:port/Folder` (or `imaps://`; user and password URL-quoted), polled every
    # `imap_poll_seconds`.
    imap_mailboxes: SecretStr | None = None
    imap_poll_seconds: float = Field(default=30.0, gt=0, le=86400)
    # Supervisors' figures (contactcenter/supervision): a contact abandoned after waiting less than this is a
    # short abandon, left out of the service level; the stream sends at most one frame per viewer this often.
    short_abandon_seconds: float = Field(default=5.0, ge=0, le=3600)
    supervisor_frame_seconds: float = Field(default=0.2, ge=0.01, le=10)
    # How often the watch reads the event log for what the relay has published since its last read.
    supervisor_follow_seconds: float = Field(default=0.1, ge=0.01, le=60)
    # Web chat (channels/webchat). The key signing visitors' tokens: every API process must share it, or a visitor
    # resuming on another process starts anew; unset, each process makes one up (tokens die with the process).
    chat_secret: SecretStr | None = None
    # How long a visitor's token resumes its conversation (it is renewed at each connection).
    chat_token_days: float = Field(default=30.0, gt=0, le=3650)
    # The longest message a visitor or an agent may write, in characters; a socket frame's own bound is four times it,
    # in bytes (past it the socket closes with 1009, as WebSockets do).
    chat_max_text: int = Field(default=4000, ge=1, le=100_000)
    # Frames a visitor may send per minute (messages, typing, claims), and in one burst, across every API process
    # (a token bucket in Redis); past it, error frames.
    chat_frames_per_minute: int = Field(default=60, ge=1, le=100_000)
    chat_frame_burst: int = Field(default=20, ge=1, le=100_000)
    # When the chat is open, e.g. `mon-fri 09:00-17:00; sat 10:00-14:00` (unset: always), in this time zone.
    # Outside them the widget says so and offers to leave a message (channels/webchat/hours.py reads them).
    chat_hours: str | None = Field(default=None, max_length=500)
    chat_timezone: TimeZoneName = Field(default="UTC", max_length=64)
    log_level: str = "INFO"
    # `json` (one object per line, for a log collector) or `text` (for a person); unset: text in embedded mode
    # or at a terminal, JSON otherwise.
    log_format: Literal["json", "text"] | None = None
    # When set, `GET /metrics` asks for `Authorization: Bearer <token>`: the port that serves it faces Twilio.
    metrics_token: SecretStr | None = None

    @field_validator("database_url", "redis_url", "amqp_url")
    @classmethod
    def _known_scheme(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        schemes = SERVICE_SCHEMES[str(info.field_name)]
        # The message names the schemes, never the URL: it may hold a password.
        if value is not None and urlsplit(value.get_secret_value()).scheme not in schemes:
            raise ValueError(f"must start with {' or '.join(sorted(schemes))}://")
        return value

    @field_validator("public_url", "twilio_api_base")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// address")
        return value

    @field_validator("smtp_relay_url")
    @classmethod
    def _relay_address(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the URL: it may hold a password.
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError("must be smtp://host:port or smtps://host:port")
        return value

    @field_validator("imap_mailboxes")
    @classmethod
    def _mailbox_addresses(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats a URL: it holds a password.
        if value is not None:
            for url in value.get_secret_value().split(","):
                parts = urlsplit(url.strip())
                if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
                    raise ValueError("each must be imap://user:password@host:port/Folder (or imaps://)")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _web_origins(cls, value: list[str]) -> list[str]:
        # Each is compared as an origin (`contactcenter.origins`): one that is none would be dropped silently,
        # and the site it meant would find its sockets refused.
        for origin in value:
            try:
                parts = urlsplit(origin)
                port = parts.port  # raises on a port that is not a number in range
            except ValueError:
                port = -1
            if port == -1 or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                # `null` too: the origin of sandboxed pages and files, which anyone can make, is never allowed.
                raise ValueError(f"each must be an origin such as https://desk.example.com, not {origin!r}")
        return value

    @field_validator("mail_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [domain.lower() for domain in value]

    @field_validator("chat_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # HS256 wants a key of at least its hash's 32 bytes (RFC 7518, 3.2).
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError(
                "must be at least 32 bytes (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        # Phone numbers without a country code are read in this region: an unknown one refuses them all.
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter region phone numbers are known for (US, GB, FR, ...)")
        return value.upper()

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
