-- An inbound interaction can land in a conversation that closes before any agent sees it: a router reads the
-- conversation as waiting for an agent (the assignment of the agent who took it not yet committed), and by
-- the time it queues the work that agent has wrapped the conversation up. The agent offered that work finds
-- the conversation closed when it accepts; the interaction then moves here to the client's open conversation
-- on its channel — opened, in the oldest queue serving the channel, if there is none — and is routed again
-- like a new contact. o_moved is false when there was nothing to move (the interaction's conversation is
-- open: another attempt moved it already; or it is not an inbound interaction).
CREATE FUNCTION cc_rehome_inbound(
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
        IF NOT FOUND THEN
            SELECT v.id, v.queue_id, v.agent_id INTO o_conversation_id, o_queue_id, o_agent_id
              FROM conversations v WHERE v.client_id = v_client AND v.channel = v_channel AND v.state = 'open';
        END IF;
    END IF;

    UPDATE interactions SET conversation_id = o_conversation_id WHERE id = p_interaction_id;
    o_moved := true;
END
$$;
