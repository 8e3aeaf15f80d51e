-- Migration 002's recording, answering a retry before it resolves the sender. A retried MessageSid that
-- names another From left a client and an identity for that number with nothing on its card. The unique
-- provider id still decides a race between two routers (one fails and is redelivered; its transaction, the
-- new client included, rolls back).
CREATE OR REPLACE FUNCTION cc_record_inbound(
    p_id uuid, p_channel text, p_direction text, p_provider_id text,
    p_kind text, p_value text, p_verified boolean,
    p_from text, p_to text, p_body text, p_received_at timestamptz,
    OUT o_interaction_id uuid, OUT o_client_id uuid, OUT o_conversation_id uuid,
    OUT o_queue_id uuid, OUT o_agent_id uuid, OUT o_open boolean, OUT o_new boolean
) LANGUAGE plpgsql AS $$
DECLARE
    stored_client uuid;  -- apart from o_client_id: a SELECT INTO that finds nothing sets its targets to NULL
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
    END IF;

    INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                              from_address, to_address, from_verified, body, received_at)
    VALUES (p_id, p_channel, p_direction, p_provider_id, o_client_id, o_conversation_id,
            p_from, p_to, p_verified, p_body, p_received_at);
    o_interaction_id := p_id;
    o_open := true;
    o_new := true;
END
$$;
