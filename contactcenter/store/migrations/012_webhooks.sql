-- Integrations (other systems: an ERP, a warehouse) and the webhooks they or the admin register, with one row
-- per (webhook, event) recording its delivery — written before the event is acknowledged on the bus, so a
-- dispatcher that dies loses nothing, and unique so a redelivered event is not sent twice.
CREATE TABLE integrations (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    token_hash bytea       NOT NULL UNIQUE,  -- sha256 of the token, as agents' tokens
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The secret is kept as it is: it must sign (HMAC) every delivery, which a hash cannot. docs/webhooks.md says why.
CREATE TABLE webhooks (
    id             uuid PRIMARY KEY,
    url            text        NOT NULL,
    types          text[]      NOT NULL,
    types_regex    text        NOT NULL,  -- the patterns as one regular expression on '.' || routing key
    secret         text        NOT NULL,
    integration_id uuid        REFERENCES integrations (id) ON DELETE CASCADE,  -- null: the admin's
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- One dispatcher at a time sends a webhook's deliveries, in order: it holds the lease until it lapses.
    lease_owner    uuid,
    lease_until    timestamptz
);
CREATE INDEX webhooks_by_integration ON webhooks (integration_id);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    webhook_id      uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        text        NOT NULL,
    event_sequence  bigint      NOT NULL,  -- the event's id as a number: deliveries go out in this order
    body            bytea       NOT NULL,  -- the CloudEvent exactly as the bus carried it
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'retrying', 'delivered', 'parked')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (webhook_id, event_id)
);
-- A webhook's line: what is still to be sent, in event order. Delivered and parked rows leave it.
CREATE INDEX webhook_deliveries_in_line ON webhook_deliveries (webhook_id, event_sequence, id)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_parked ON webhook_deliveries (webhook_id) WHERE state = 'parked';
