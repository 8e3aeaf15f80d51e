-- A contact that leaves before the router has recorded it (a caller who hangs up, or goes to voicemail, while
-- the call is still on the bus) must not be queued and offered afterwards — a call nobody is on. The channel
-- writes its departure here (channels/twilio/voice_store.py, in the transaction of the status that ends the
-- call); the recording of the contact reads and deletes it, and stores the contact in a conversation closed at
-- once, with the events of an abandon. Channel-neutral, keyed like contact_queue_choices (migration 013).
--
-- The two meet under one advisory lock per contact, hashtextextended('departure:<channel>:<provider id>', 0):
-- the departure is written holding it, and cc_record_inbound takes it before it looks for the departure. So
-- either the recording sees the departure, or the departure is committed after the recording, and the channel
-- then finds the stored contact and withdraws it (contactcenter/agents/withdrawal.py).
CREATE TABLE contact_departures (
    channel     text        NOT NULL,
    provider_id text        NOT NULL,
    -- abandoned: the customer gave up; withdrawn: it left for other work (a caller gone to voicemail).
    reason      text        NOT NULL CHECK (reason IN ('abandoned', 'withdrawn')),
    departed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, provider_id)
);
-- Departures of contacts recorded before them (the usual case) are never read: a day old, they go (by age).
CREATE INDEX contact_departures_by_age ON contact_departures (departed_at);

-- Migration 026's recording, with the departures: under the contact's departure lock, a departure of this
-- contact is deleted and the contact stored in a conversation of its own, closed at once (never the client's
-- open one: that one's work is not this contact's), with interaction.abandoned (when it was abandoned and a
-- queue serves it) and conversation.closed (no agent, the departure's reason) after the usual events; o_open is
-- false, so the router queues nothing. Signature, outputs and other events unchanged.
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
    erased boolean := false;
    departed text;  -- the reason of the contact's departure, when it left before this recording
    v_closed_at timestamptz;
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
        SELECT t.client_id INTO o_client_id FROM identity_tombstones t
         WHERE t.digest = cc_identity_digest(p_kind, p_value) AND t.erased_at >= p_received_at;
        erased := o_client_id IS NOT NULL;
    END IF;
    IF o_client_id IS NULL THEN
        o_client_id := gen_random_uuid();
        INSERT INTO clients (id) VALUES (o_client_id);
        INSERT INTO identities (kind, value, client_id, verified, raw_value)
        VALUES (p_kind, p_value, o_client_id, p_verified, p_from);
        new_client := true;
    ELSIF p_verified AND NOT erased THEN
        UPDATE identities SET verified = true WHERE kind = p_kind AND value = p_value AND NOT verified;
    END IF;

    -- The contact's departure lock (see the table above), held to the end of the transaction.
    PERFORM pg_advisory_xact_lock(hashtextextended('departure:' || p_channel || ':' || p_provider_id, 0));

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

    IF erased THEN
        -- Counted on the erased card like its other contacts, carrying nothing of the customer.
        o_conversation_id := gen_random_uuid();
        INSERT INTO conversations (id, client_id, channel, state, closed_at)
        VALUES (o_conversation_id, o_client_id, p_channel, 'closed', now());
        INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                                  from_address, to_address, from_verified, body, received_at)
        VALUES (p_id, p_channel, p_direction, p_provider_id, o_client_id, o_conversation_id,
                '', '', p_verified, '', p_received_at);
        o_interaction_id := p_id;
        o_queue_id := NULL;
        o_agent_id := NULL;
        o_open := false;
        o_new := true;
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('interaction.received', p_id, 'interaction:' || p_id,
                jsonb_build_object('interaction_id', p_id, 'conversation_id', o_conversation_id,
                                   'client_id', o_client_id, 'channel', p_channel, 'direction', p_direction,
                                   'received_at', p_received_at));
        RETURN;
    END IF;

    DELETE FROM contact_departures d WHERE d.channel = p_channel AND d.provider_id = p_provider_id
    RETURNING d.reason INTO departed;

    o_conversation_id := NULL;
    IF departed IS NULL THEN
        SELECT v.id, v.queue_id, v.agent_id INTO o_conversation_id, o_queue_id, o_agent_id
          FROM conversations v WHERE v.client_id = o_client_id AND v.channel = p_channel AND v.state = 'open';
    END IF;
    IF o_conversation_id IS NULL THEN
        -- The queue the contact chose (migration 013), when it serves the channel; else the oldest that serves it.
        SELECT q.id INTO o_queue_id FROM contact_queue_choices c JOIN queues q ON q.name = c.queue_name
         WHERE c.channel = p_channel AND c.provider_id = p_provider_id AND p_channel = ANY (q.channels);
        IF o_queue_id IS NULL THEN
            SELECT q.id INTO o_queue_id FROM queues q
             WHERE p_channel = ANY (q.channels) ORDER BY q.created_at, q.name LIMIT 1;
        END IF;
        o_conversation_id := gen_random_uuid();
        o_agent_id := NULL;
        IF departed IS NULL THEN
            INSERT INTO conversations (id, client_id, channel, queue_id)
            VALUES (o_conversation_id, o_client_id, p_channel, o_queue_id);
        ELSE
            v_closed_at := now();
            INSERT INTO conversations (id, client_id, channel, queue_id, state, closed_at)
            VALUES (o_conversation_id, o_client_id, p_channel, o_queue_id, 'closed', v_closed_at);
        END IF;
        new_conversation := true;
    END IF;

    INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                              from_address, to_address, from_verified, body, received_at)
    VALUES (p_id, p_channel, p_direction, p_provider_id, o_client_id, o_conversation_id,
            p_from, p_to, p_verified, p_body, p_received_at);
    o_interaction_id := p_id;
    o_open := departed IS NULL;
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
    IF departed IS NOT NULL THEN
        IF departed = 'abandoned' AND o_queue_id IS NOT NULL THEN
            INSERT INTO events (type, subject, partition_key, data)
            VALUES ('interaction.abandoned', p_id, 'interaction:' || p_id,
                    jsonb_build_object('interaction_id', p_id, 'conversation_id', o_conversation_id,
                                       'queue_id', o_queue_id));
        END IF;
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('conversation.closed', o_conversation_id, 'conversation:' || o_conversation_id,
                jsonb_build_object('conversation_id', o_conversation_id, 'client_id', o_client_id,
                                   'channel', p_channel, 'agent_id', NULL, 'closed_at', v_closed_at,
                                   'reason', departed));
    END IF;
END
$$;
