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

-- Migration 002's recording, and when the interaction opened a conversation or joined one still waiting in a
-- queue (no agent yet), also the queue's name and the client's card as they stand with it: what an offer for
-- it shows. Both NULL otherwise (a retry, a conversation an agent holds, no queue for the channel). The
-- eleven-argument function stays as it is: it does the recording, here and for routers of the previous
-- release during a rolling upgrade.
CREATE FUNCTION cc_record_inbound(
    p_id uuid, p_channel text, p_direction text, p_provider_id text,
    p_kind text, p_value text, p_verified boolean,
    p_from text, p_to text, p_body text, p_received_at timestamptz, p_timeline_limit integer,
    OUT o_interaction_id uuid, OUT o_client_id uuid, OUT o_conversation_id uuid,
    OUT o_queue_id uuid, OUT o_agent_id uuid, OUT o_open boolean, OUT o_new boolean,
    OUT o_queue_name text, OUT o_card text
) LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.o_interaction_id, r.o_client_id, r.o_conversation_id, r.o_queue_id, r.o_agent_id, r.o_open, r.o_new
      INTO o_interaction_id, o_client_id, o_conversation_id, o_queue_id, o_agent_id, o_open, o_new
      FROM cc_record_inbound(p_id, p_channel, p_direction, p_provider_id, p_kind, p_value, p_verified,
                             p_from, p_to, p_body, p_received_at) r;
    -- A statement after the recording sees what it wrote: the card holds the interaction just stored.
    IF o_new AND o_agent_id IS NULL AND o_queue_id IS NOT NULL THEN
        SELECT q.name INTO o_queue_name FROM queues q WHERE q.id = o_queue_id;
        o_card := cc_card(o_client_id, p_timeline_limit);
    END IF;
END
$$;
