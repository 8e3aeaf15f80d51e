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

-- A chat visitor's claims made before its first message (`identify` first: no card yet) are sighted on the
-- visitor's card when it gets one — when its `visitor` identity is made — as claims made after are by
-- migration 026's trigger on `chat_visitors`. A visitor identity that is no chat visitor id (not a UUID) has
-- no claims.
CREATE FUNCTION cc_visitor_card_claims_met() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_claims jsonb;
BEGIN
    IF NEW.value !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN NULL;
    END IF;
    SELECT claims INTO v_claims FROM chat_visitors WHERE visitor_id = NEW.value::uuid;
    IF v_claims ? 'email' THEN
        PERFORM cc_sight_identifier('email', v_claims ->> 'email', NEW.client_id, 'chat_claim');
    END IF;
    IF v_claims ? 'phone' THEN
        PERFORM cc_sight_identifier('phone', v_claims ->> 'phone', NEW.client_id, 'chat_claim');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER visitor_card_claims_sighted AFTER INSERT ON identities
    FOR EACH ROW WHEN (NEW.kind = 'visitor') EXECUTE FUNCTION cc_visitor_card_claims_met();

-- Tombstones have a retention now (`CC_IDENTITY_TOMBSTONE_RETENTION_HOURS`): the purge reads them by age.
CREATE INDEX identity_tombstones_by_age ON identity_tombstones (erased_at);
