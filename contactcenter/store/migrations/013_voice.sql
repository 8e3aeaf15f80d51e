-- Voice (issue 16): menus per dialled number, the calls Twilio tells us of, where agents take calls, and the
-- queue a contact chose (a menu's answer), which the recording of the contact honours.

-- One menu per number we answer (E.164): greeting, prompt, the options (digit, words, queue), the opening
-- hours and what past the queue's wait does. Managed through the admin API (`channels/twilio/voice_admin.py`).
CREATE TABLE voice_menus (
    number           text        PRIMARY KEY,
    greeting         text        NOT NULL DEFAULT '',
    prompt           text        NOT NULL DEFAULT '',
    -- [{"digit": "1", "words": ["sales", "buy"], "queue": "sales"}, ...]
    options          jsonb       NOT NULL DEFAULT '[]',
    -- IANA time zone and, per ISO weekday (1 = Monday), [["09:00", "17:00"], ...]; no hours: always open.
    time_zone        text        NOT NULL DEFAULT 'UTC',
    hours            jsonb       NOT NULL DEFAULT '{}',
    max_wait_seconds integer     NOT NULL DEFAULT 600 CHECK (max_wait_seconds BETWEEN 10 AND 86400),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per call Twilio tells us of (CallSid). `rank` only grows: a late or repeated status callback
-- changes nothing (queued/initiated 0, ringing 1, in-progress 2, a final status 3).
CREATE TABLE voice_calls (
    call_sid         text        PRIMARY KEY,
    from_number      text        NOT NULL,
    to_number        text        NOT NULL,
    status           text        NOT NULL,
    rank             smallint    NOT NULL,
    queue_name       text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    enqueued_at      timestamptz,
    connected_at     timestamptz,
    agent_id         uuid,
    ended_at         timestamptz,
    duration_seconds integer,
    -- Set once, when the caller hung up before any agent took the call: how long they waited.
    abandoned        boolean     NOT NULL DEFAULT false,
    -- The caller asked to be called back (it hangs up, its place in the queue kept): no abandon.
    callback_requested boolean   NOT NULL DEFAULT false,
    waited_seconds   integer
);

-- Where an agent takes calls: a Twilio Client identity (the default, `agent-<id>`), a phone number or a SIP
-- address.
CREATE TABLE voice_endpoints (
    agent_id uuid PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    kind     text NOT NULL CHECK (kind IN ('client', 'phone', 'sip')),
    address  text NOT NULL
);

-- The queue a contact asked for (a caller's menu choice), written before the contact is published, so the
-- router's recording finds it whichever router records it.
CREATE TABLE contact_queue_choices (
    channel     text NOT NULL,
    provider_id text NOT NULL,
    queue_name  text NOT NULL,
    PRIMARY KEY (channel, provider_id)
);

-- Migration 010's recording; a contact that chose its queue opens its conversation there (policy
-- QUEUE_FOR_A_CONTACT). Signature and outputs unchanged.
CREATE OR REPLACE FUNCTION cc_record_inbound(
    p_id uuid, p_channel text, p_direction text, p_provider_id text,
    p_kind text, p_value text, p_verified boolean,
    p_from text, p_to text, p_body text, p_received_at timestamptz,
    OUT o_interaction_id uuid, OUT o_client_id uuid, OUT o_conversation_id uuid,
    OUT o_queue_id uuid, OUT o_agent_id uuid, OUT o_open boolean, OUT o_new boolean
) LANGUAGE plpgsql AS $$
DECLARE
    stored_client uuid;  -- apart from o_client_id: a SELECT INTO that finds nothing sets its targets to NULL
    new_client boolean := false;
    new_conversation boolean := false;
BEGIN
    -- A retry is answered before the sender is resolved: it may name another sender (a retried MessageSid
    -- with another From), whose client would otherwise be created and left empty.
    SELECT x.id, x.client_id, x.conversation_id, v.queue_id, v.agent_id, v.state = 'open'
      INTO o_interaction_id, o_client_id, o_conversation_id, o_queue_id, o_agent_id, o_open
      FROM interactions x JOIN conversations v ON v.id = x.conversation_id
     WHERE x.channel = p_channel AND x.direction = p_direction AND x.provider_id = p_provider_id;
    IF FOUND THEN
        o_new := false;
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock(hashtextextended(p_kind || ':' || p_value, 0));

    SELECT i.client_id INTO o_client_id FROM identities i WHERE i.kind = p_kind AND i.value = p_value;
    IF o_client_id IS NULL THEN
        o_client_id := gen_random_uuid();
        INSERT INTO clients (id) VALUES (o_client_id);
        INSERT INTO identities (kind, value, client_id, verified) VALUES (p_kind, p_value, o_client_id, p_verified);
        new_client := true;
    ELSIF p_verified THEN
        UPDATE identities SET verified = true WHERE kind = p_kind AND value = p_value AND NOT verified;
    END IF;

    -- Again under the lock: a router recording the same contact at once may have stored it meanwhile.
    SELECT x.id, x.client_id, x.conversation_id, v.queue_id, v.agent_id, v.state = 'open'
      INTO o_interaction_id, stored_client, o_conversation_id, o_queue_id, o_agent_id, o_open
      FROM interactions x JOIN conversations v ON v.id = x.conversation_id
     WHERE x.channel = p_channel AND x.direction = p_direction AND x.provider_id = p_provider_id;
    IF FOUND THEN
        o_client_id := stored_client;
        o_new := false;
        RETURN;
    END IF;

    SELECT v.id, v.queue_id, v.agent_id INTO o_conversation_id, o_queue_id, o_agent_id
      FROM conversations v WHERE v.client_id = o_client_id AND v.channel = p_channel AND v.state = 'open';
    IF NOT FOUND THEN
        -- The queue the contact chose, when it serves the channel; else the oldest that serves it.
        SELECT q.id INTO o_queue_id FROM contact_queue_choices c JOIN queues q ON q.name = c.queue_name
         WHERE c.channel = p_channel AND c.provider_id = p_provider_id AND p_channel = ANY (q.channels);
        IF o_queue_id IS NULL THEN
            SELECT q.id INTO o_queue_id FROM queues q
             WHERE p_channel = ANY (q.channels) ORDER BY q.created_at, q.name LIMIT 1;
        END IF;
        o_conversation_id := gen_random_uuid();
        INSERT INTO conversations (id, client_id, channel, queue_id)
        VALUES (o_conversation_id, o_client_id, p_channel, o_queue_id);
        new_conversation := true;
    END IF;

    INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                              from_address, to_address, from_verified, body, received_at)
    VALUES (p_id, p_channel, p_direction, p_provider_id, o_client_id, o_conversation_id,
            p_from, p_to, p_verified, p_body, p_received_at);
    o_interaction_id := p_id;
    o_open := true;
    o_new := true;

    -- The events, in the order a reader tells the story (schema/events.py has each one's data).
    INSERT INTO events (type, subject, partition_key, data)
    VALUES ('interaction.received', p_id, 'interaction:' || p_id,
            jsonb_build_object('interaction_id', p_id, 'conversation_id', o_conversation_id,
                               'client_id', o_client_id, 'channel', p_channel, 'direction', p_direction,
                               'received_at', p_received_at));
    IF new_client THEN
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('client.created', o_client_id, 'client:' || o_client_id,
                jsonb_build_object('client_id', o_client_id));
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('identity.added', o_client_id, 'client:' || o_client_id,
                jsonb_build_object('client_id', o_client_id, 'kind', p_kind, 'value', p_value,
                                   'verified', p_verified));
    END IF;
    IF new_conversation THEN
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('conversation.opened', o_conversation_id, 'conversation:' || o_conversation_id,
                jsonb_build_object('conversation_id', o_conversation_id, 'client_id', o_client_id,
                                   'channel', p_channel, 'queue_id', o_queue_id));
    END IF;
END
$$;
