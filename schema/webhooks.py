"""Bodies of the webhooks and integrations API (`/api/v1/webhooks`, `/api/v1/integrations`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schema.text import DisplayName

# A receiver wants a handful of kinds of events; the bound keeps a webhook's matching (one regex) small.
MAX_TYPES_PER_WEBHOOK = 20
MAX_URL_LENGTH = 2000
# Words of an AMQP-like topic pattern on the routing key: `*` is one word, `#` any number of them.
TYPE_PATTERN = r"^(\*|#|[a-z0-9_-]+)(\.(\*|#|[a-z0-9_-]+)){0,9}$"
EventTypePattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=TYPE_PATTERN,
        description="a routing key pattern: words of a-z, 0-9, '_' and '-' joined by '.'; `*` matches one word, "
        "`#` any number (`interaction.*`, `#`)",
    ),
]


def _web_address(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise ValueError("must be an http:// or https:// address") from None
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// address")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials: each delivery is signed instead")
    if any(ord(character) <= 0x20 or ord(character) == 0x7F for character in value):
        raise ValueError("must not contain spaces or control characters")
    return value


WebAddress = Annotated[
    str,
    Field(min_length=8, max_length=MAX_URL_LENGTH, pattern=r"^https?://", description="an http:// or https:// URL"),
    AfterValidator(_web_address),
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebAddress
    types: list[EventTypePattern] = Field(min_length=1, max_length=MAX_TYPES_PER_WEBHOOK)


class WebhookCreated(BaseModel):
    id: uuid.UUID
    url: str
    types: list[str]
    secret: str = Field(description="signs every delivery (`X-CC-Signature`); shown only in this answer")


class WebhookView(BaseModel):
    id: uuid.UUID
    url: str
    types: list[str]
    integration_id: uuid.UUID | None = Field(description="the integration that owns it; null for the admin's")
    created_at: datetime
    parked: int = Field(description="deliveries given up after the last retry, waiting for a replay")
    suspended_at: datetime | None = Field(
        description="when its line grew past CC_WEBHOOK_MAX_PENDING: its line is parked and its events are not "
        "recorded until an admin replays it; null while it is active"
    )
    missed_after: int | None = Field(
        description="while suspended, the id of the last event recorded for it: the later ones are in "
        "`GET /api/v1/events?after=`"
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookView]


class ReplayResult(BaseModel):
    replayed: int = Field(description="parked deliveries put back in line, sent again in event order")
    missed_after: int | None = Field(
        default=None,
        description="present when the webhook was suspended: events after this id, up to its resumption, were not "
        "recorded for it — `GET /api/v1/events?after=<missed_after>` has them",
    )


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DisplayName = Field(min_length=1, max_length=200)


class IntegrationCreated(BaseModel):
    id: uuid.UUID
    name: str
    token: str = Field(description="the integration's bearer token; shown only in this answer")
