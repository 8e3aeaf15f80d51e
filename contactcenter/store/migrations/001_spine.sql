-- The spine: clients and their identities, queues and agents, conversations and interactions.

CREATE TABLE clients (
    id           uuid PRIMARY KEY,
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per normalised identifier (E.164 phone, lower-cased email, chat visitor id): unique, so two
-- routers resolving the same new number at once end with one client.
CREATE TABLE identities (
    kind       text        NOT NULL CHECK (kind IN ('phone', 'email', 'visitor')),
    value      text        NOT NULL,
    client_id  uuid        NOT NULL REFERENCES clients (id),
    verified   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_by_client ON identities (client_id);

CREATE TABLE queues (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    channels   text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    -- sha256 of the bearer token; the token itself is shown once, at creation.
    token_hash bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agent_queues (
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    queue_id uuid NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, queue_id)
);

CREATE TABLE conversations (
    id        uuid PRIMARY KEY,
    client_id uuid        NOT NULL REFERENCES clients (id),
    channel   text        NOT NULL,
    queue_id  uuid REFERENCES queues (id),
    agent_id  uuid REFERENCES agents (id),
    state     text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    opened_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz
);
-- A client has at most one open conversation per channel: the next SMS joins it.
CREATE UNIQUE INDEX conversations_one_open ON conversations (client_id, channel) WHERE state = 'open';
CREATE INDEX conversations_by_agent ON conversations (agent_id) WHERE state = 'open';

CREATE TABLE interactions (
    id              uuid PRIMARY KEY,
    channel         text        NOT NULL,
    direction       text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    provider_id     text        NOT NULL,
    client_id       uuid        NOT NULL REFERENCES clients (id),
    conversation_id uuid REFERENCES conversations (id),
    from_address    text        NOT NULL,
    to_address      text        NOT NULL,
    from_verified   boolean     NOT NULL,
    body            text        NOT NULL,
    received_at     timestamptz NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now(),
    -- The provider's own id is the idempotency key: a retried webhook is stored once.
    UNIQUE (channel, direction, provider_id)
);
CREATE INDEX interactions_timeline ON interactions (client_id, received_at DESC);
