-- The card an offer shows, read in the transaction that records the interaction: an offer made at once (an
-- agent was free) no longer reads it in a statement of its own.
--
-- cc_card is the one definition of the card (the API's card endpoints and the offer path read it here). It is
-- PL/pgSQL, not SQL, so that its plan is kept per connection: a SQL function that cannot be inlined is
-- planned anew on every call.
CREATE FUNCTION cc_card(p_client_id uuid, p_timeline_limit integer) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT json_build_object(
            'client', json_build_object('id', c.id, 'display_name', c.display_name, 'created_at', c.created_at),
            'identities', (
                SELECT coalesce(json_agg(json_build_object('kind', i.kind, 'value', i.value, 'verified', i.verified)
                                         ORDER BY i.created_at, i.kind, i.value), '[]'::json)
                FROM identities i WHERE i.client_id = c.id),
            'timeline', (
                SELECT coalesce(json_agg(t ORDER BY t.occurred_at DESC, t.id), '[]'::json)
                FROM (SELECT x.id, x.channel, x.direction, x.body, x.received_at AS occurred_at, x.conversation_id
                      FROM interactions x WHERE x.client_id = c.id
                      ORDER BY x.received_at DESC LIMIT p_timeline_limit) t)
        )::text
        FROM clients c WHERE c.id = p_client_id);
END
$$;

-- As migration 002, and when the interaction opened a conversation or joined one still waiting in a queue
-- (no agent yet), also the queue's name and the client's card as they stand with it: what an offer for it
-- shows. Both NULL otherwise (a retry, a conversation an agent holds, no queue for the channel).
-- An overload (one more argument): routers of the previous release, still running during a rolling upgrade,
-- call the eleven-argument one of migration 002, left in place until a later migration drops it.
CREATE FUNCTION cc_record_inbound(
    p_id uuid, p_channel text, p_direction text, p_provider_id text,
    p_kind text, p_value text, p_verified boolean,
    p_from text, p_to text, p_body text, p_received_at timestamptz, p_timeline_limit integer,
    OUT o_interaction_id uuid, OUT o_client_id uuid, OUT o_conversation_id uuid,
    OUT o_queue_id uuid, OUT o_agent_id uuid, OUT o_open boolean, OUT o_new boolean,
    OUT o_queue_name text, OUT o_card text
) LANGUAGE plpgsql AS $$
DECLARE
    stored_client uuid;  -- apart from o_client_id: a SELECT INTO that finds nothing sets its targets to NULL
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_kind || ':' || p_value, 0));

    SELECT i.client_id INTO o_client_id FROM identities i WHERE i.kind = p_kind AND i.value = p_value;
    IF o_client_id IS NULL THEN
        o_client_id := gen_random_uuid();
        INSERT INTO clients (id) VALUES (o_client_id);
        INSERT INTO identities (kind, value, client_id, verified) VALUES (p_kind, p_value, o_client_id, p_verified);
    ELSIF p_verified THEN
        UPDATE identities SET verified = true WHERE kind = p_kind AND value = p_value AND NOT verified;
    END IF;

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
    END IF;

    INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                              from_address, to_address, from_verified, body, received_at)
    VALUES (p_id, p_channel, p_direction, p_provider_id, o_client_id, o_conversation_id,
            p_from, p_to, p_verified, p_body, p_received_at);
    o_interaction_id := p_id;
    o_open := true;
    o_new := true;

    IF o_agent_id IS NULL AND o_queue_id IS NOT NULL THEN
        SELECT q.name INTO o_queue_name FROM queues q WHERE q.id = o_queue_id;
        o_card := cc_card(o_client_id, p_timeline_limit);
    END IF;
END
$$;
