-- What a provider reported of an agent's reply after it left: delivered to the customer's phone, or not
-- (Twilio's SMS status callback: `delivered`, `undelivered`, `failed`). The first final report of a message is
-- kept; the ones after it (Twilio repeats, a late `failed` after `delivered`) change nothing. It is stored as it
-- arrives, even before the reply it names is (its REST answer and the callback may cross), and told once — as
-- `message.delivered` or `message.undelivered` — when both are there (`told_at`).
CREATE TABLE message_deliveries (
    channel     text        NOT NULL,
    provider_id text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('delivered', 'undelivered', 'failed')),
    error_code  text        NOT NULL DEFAULT '',
    reported_at timestamptz NOT NULL DEFAULT now(),
    told_at     timestamptz,
    PRIMARY KEY (channel, provider_id)
);
