-- Issue 19's gaps (the card).
--
-- cc_rehome_inbound (latest: migration 010) with one change: a contact on an erased card is never moved into an
-- open conversation (nor one opened for it). An erasure closes the card's conversations; a contact the router
-- had recorded just before, whose conversation it finds closed, would otherwise open a new one on the erased
-- card and be offered to an agent, emptied. It stays where it is, closed, like a contact recorded after the
-- erasure from its tombstone (migration 026).
CREATE OR REPLACE FUNCTION cc_rehome_inbound(
    p_interaction_id uuid,
    OUT o_moved boolean, OUT o_conversation_id uuid, OUT o_queue_id uuid, OUT o_agent_id uuid
) LANGUAGE plpgsql AS $$
DECLARE
    v_client uuid;
    v_channel text;
    v_state text;
    v_erased boolean;
BEGIN
    o_moved := false;
    SELECT x.client_id, x.channel, v.state, c.erased_at IS NOT NULL INTO v_client, v_channel, v_state, v_erased
      FROM interactions x JOIN conversations v ON v.id = x.conversation_id JOIN clients c ON c.id = x.client_id
     WHERE x.id = p_interaction_id AND x.direction = 'inbound'
       FOR UPDATE OF x;
    IF NOT FOUND OR v_state = 'open' OR v_erased THEN
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
