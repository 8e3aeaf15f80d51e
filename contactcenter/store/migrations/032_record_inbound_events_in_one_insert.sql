-- Issue 15's cost: cc_record_inbound's events (up to four for a new sender) written by one multi-row insert
-- instead of one statement each — one executor run and one firing of the outbox's statement trigger (its NOTIFY)
-- instead of four. Redefined from its latest definition (migration 030, which redefined 026 for the departures of issue 16); only the events' insert at its end
-- changed: same rows, same data, same order.
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

    -- The events, in the order a reader tells the story (schema/events.py has each one's data): one insert of
    -- those that apply, in that order (`seq` is taken as the rows come).
    INSERT INTO events (type, subject, partition_key, data)
    SELECT e.type, e.subject, e.partition_key, e.data
      FROM (VALUES
        (1, 'interaction.received', p_id::text, 'interaction:' || p_id,
         jsonb_build_object('interaction_id', p_id, 'conversation_id', o_conversation_id,
                            'client_id', o_client_id, 'channel', p_channel, 'direction', p_direction,
                            'received_at', p_received_at), true),
        (2, 'client.created', o_client_id::text, 'client:' || o_client_id,
         jsonb_build_object('client_id', o_client_id), new_client),
        (3, 'identity.added', o_client_id::text, 'client:' || o_client_id,
         jsonb_build_object('client_id', o_client_id, 'kind', p_kind, 'value', p_value,
                            'verified', p_verified), new_client),
        (4, 'conversation.opened', o_conversation_id::text, 'conversation:' || o_conversation_id,
         jsonb_build_object('conversation_id', o_conversation_id, 'client_id', o_client_id,
                            'channel', p_channel, 'queue_id', o_queue_id), new_conversation)
      ) AS e(n, type, subject, partition_key, data, wanted)
     WHERE e.wanted
     ORDER BY e.n;
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
