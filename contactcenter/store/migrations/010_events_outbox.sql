-- The outbox and event log (issue 15): every state change is a row here, written in the transaction that makes
-- the change, so the stream never disagrees with the database. `contactcenter/events/relay.py` publishes it.
--
-- Two numbers per row. `seq` is taken when the row is written; `id` (the public event id, CloudEvents `id`)
-- is stamped by the one relay that holds the publishing lock, in `seq` order among the rows committed by then.
-- A transaction can take its `seq` before another and commit after it: were `seq` the public id, a consumer
-- paging `?after=` could pass over a row that commits late. Stamped ids only grow, and a row keeps its id when
-- it is published again after a crash, so consumers deduplicate by it.
CREATE TABLE events (
    seq            bigserial   PRIMARY KEY,
    -- NULL until stamped. Its index serves the "after id" paging, and the stamping too (a btree keeps NULLs:
    -- the unstamped rows are found there, few, then sorted by seq — EXPLAIN-checked).
    id             bigint      UNIQUE,
    type           text        NOT NULL,          -- without the `org.contactcenter.` prefix: the routing key
    subject        text        NOT NULL,
    partition_key  text        NOT NULL,          -- "<entity kind>:<entity id>": the order key
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    data           jsonb       NOT NULL,
    -- Events of changes made in Redis arrive through a stream; its entry id makes moving them idempotent.
    stream_id      text,
    published_at   timestamptz
);
CREATE SEQUENCE events_public_id OWNED BY events.id;
CREATE INDEX events_unpublished ON events (id) WHERE published_at IS NULL AND id IS NOT NULL;
CREATE UNIQUE INDEX events_by_stream_entry ON events (stream_id) WHERE stream_id IS NOT NULL;
-- Retention deletes by age; rows arrive in time order, so a block range index is enough and nearly free.
CREATE INDEX events_by_time ON events USING brin (occurred_at);

-- Wakes the relay (LISTEN cc_events); the payload names the schema, as each test has its own. One
-- notification per statement, and PostgreSQL folds a transaction's equal notifications into one.
CREATE FUNCTION cc_events_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cc_events', current_schema());
    RETURN NULL;
END
$$;
CREATE TRIGGER events_written AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION cc_events_written();

-- Migration 007's recording, now also writing its events: interaction.received, and when it made them,
-- client.created, identity.added and conversation.opened. Signature and outputs unchanged.
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
        SELECT q.id INTO o_queue_id FROM queues q
         WHERE p_channel = ANY (q.channels) ORDER BY q.created_at, q.name LIMIT 1;
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

-- Migration 006's move, now writing conversation.opened when it opens one. Signature and outputs unchanged.
CREATE OR REPLACE FUNCTION cc_rehome_inbound(
    p_interaction_id uuid,
    OUT o_moved boolean, OUT o_conversation_id uuid, OUT o_queue_id uuid, OUT o_agent_id uuid
) LANGUAGE plpgsql AS $$
DECLARE
    v_client uuid;
    v_channel text;
    v_state text;
BEGIN
    o_moved := false;
    SELECT x.client_id, x.channel, v.state INTO v_client, v_channel, v_state
      FROM interactions x JOIN conversations v ON v.id = x.conversation_id
     WHERE x.id = p_interaction_id AND x.direction = 'inbound'
       FOR UPDATE OF x;
    IF NOT FOUND OR v_state = 'open' THEN
        RETURN;
    END IF;

    SELECT v.id, v.queue_id, v.agent_id INTO o_conversation_id, o_queue_id, o_agent_id
      FROM conversations v WHERE v.client_id = v_client AND v.channel = v_channel AND v.state = 'open';
    IF NOT FOUND THEN
        SELECT q.id INTO o_queue_id FROM queues q
         WHERE v_channel = ANY (q.channels) ORDER BY q.created_at, q.name LIMIT 1;
        o_conversation_id := gen_random_uuid();
        o_agent_id := NULL;
        -- A contact recorded meanwhile may have opened one (the client's one open conversation per channel).
        INSERT INTO conversations (id, client_id, channel, queue_id)
        VALUES (o_conversation_id, v_client, v_channel, o_queue_id)
        ON CONFLICT (client_id, channel) WHERE state = 'open' DO NOTHING;
        IF FOUND THEN
            INSERT INTO events (type, subject, partition_key, data)
            VALUES ('conversation.opened', o_conversation_id, 'conversation:' || o_conversation_id,
                    jsonb_build_object('conversation_id', o_conversation_id, 'client_id', v_client,
                                       'channel', v_channel, 'queue_id', o_queue_id));
        ELSE
            SELECT v.id, v.queue_id, v.agent_id INTO o_conversation_id, o_queue_id, o_agent_id
              FROM conversations v WHERE v.client_id = v_client AND v.channel = v_channel AND v.state = 'open';
        END IF;
    END IF;

    UPDATE interactions SET conversation_id = o_conversation_id WHERE id = p_interaction_id;
    o_moved := true;
END
$$;
