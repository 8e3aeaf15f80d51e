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

-- cc_export_client (latest: migration 026) with chat and mail added: the transcripts of the card's chat
-- visitors (with what each claimed and proved) and the stored mail of the card's conversations and of its
-- addresses (with its attachments' names, types and sizes; their content is fetched on its own), read as
-- cc_erase_client reads them. After an erasure these are what the erasure left: none (transcripts), or the
-- Message-ID alone (mail).
CREATE OR REPLACE FUNCTION cc_export_client(p_client_id uuid) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_root uuid := cc_card_root(p_client_id);
    v_members uuid[];
    v_visitors uuid[];
    v_addresses text[];
    v_mails text[];
BEGIN
    IF v_root IS NULL THEN
        RETURN NULL;
    END IF;
    v_members := cc_card_members(v_root);
    -- What the identities lead to, as the erasure reads it (migration 026): the chat visitors' transcripts,
    -- the mail of the card's conversations and the mail its addresses sent.
    SELECT array_agg(value::uuid) INTO v_visitors FROM identities
     WHERE client_id = ANY (v_members) AND kind = 'visitor'
       AND value ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$';
    SELECT array_agg(value) INTO v_addresses FROM identities WHERE client_id = ANY (v_members) AND kind = 'email';
    SELECT array_agg(provider_id) INTO v_mails FROM interactions
     WHERE client_id = ANY (v_members) AND channel = 'email';
    RETURN json_build_object(
        'exported_at', now(),
        'client', (SELECT json_build_object('id', c.id, 'display_name', c.display_name, 'created_at', c.created_at,
                                            'profile', c.profile, 'tags', to_json(c.tags),
                                            'erased_at', c.erased_at)
                   FROM clients c WHERE c.id = v_root),
        'merged', to_json(array_remove(v_members, v_root)),
        'identities', (SELECT coalesce(json_agg(json_build_object(
                           'kind', i.kind, 'value', i.value, 'raw', i.raw_value, 'verified', i.verified,
                           'source', i.source, 'added_at', i.created_at) ORDER BY i.created_at), '[]'::json)
                       FROM identities i WHERE i.client_id = ANY (v_members)),
        'interactions', (SELECT coalesce(json_agg(json_build_object(
                             'id', x.id, 'channel', x.channel, 'direction', x.direction, 'from', x.from_address,
                             'to', x.to_address, 'body', x.body, 'received_at', x.received_at,
                             'conversation_id', x.conversation_id) ORDER BY x.received_at, x.id), '[]'::json)
                         FROM interactions x WHERE x.client_id = ANY (v_members)),
        'conversations', (SELECT coalesce(json_agg(json_build_object(
                              'id', v.id, 'channel', v.channel, 'state', v.state, 'opened_at', v.opened_at,
                              'closed_at', v.closed_at) ORDER BY v.opened_at), '[]'::json)
                          FROM conversations v WHERE v.client_id = ANY (v_members)),
        'notes', (SELECT coalesce(json_agg(json_build_object('author', n.author, 'body', n.body,
                                                             'created_at', n.created_at) ORDER BY n.created_at), '[]'::json)
                  FROM client_notes n WHERE n.client_id = ANY (v_members)),
        'merges', (SELECT coalesce(json_agg(json_build_object(
                       'id', m.id, 'survivor_id', m.survivor_id, 'merged_id', m.merged_id, 'actor', m.actor,
                       'reason', m.reason, 'automatic', m.automatic, 'evidence', m.evidence,
                       'merged_at', m.merged_at, 'undone_at', m.undone_at) ORDER BY m.merged_at),
                       '[]'::json)
                   FROM client_merges m WHERE m.survivor_id = ANY (v_members) OR m.merged_id = ANY (v_members)),
        'chat', (SELECT coalesce(json_agg(json_build_object(
                     'visitor_id', cv.visitor_id, 'claims', cv.claims, 'verified_email', cv.verified_email,
                     'messages', (SELECT coalesce(json_agg(json_build_object(
                                      'seq', cm.seq, 'sender', cm.sender, 'body', cm.body, 'sent_at', cm.sent_at)
                                      ORDER BY cm.seq), '[]'::json)
                                  FROM chat_messages cm WHERE cm.visitor_id = cv.visitor_id))
                     ORDER BY cv.created_at, cv.visitor_id), '[]'::json)
                 FROM chat_visitors cv WHERE cv.visitor_id = ANY (v_visitors)),
        'mail', (SELECT coalesce(json_agg(json_build_object(
                     'message_id', e.message_id, 'direction', e.direction, 'address', e.client_address,
                     'subject', e.subject, 'text_body', e.text_body, 'html_body', e.html_body,
                     'in_reply_to', e.in_reply_to, 'created_at', e.created_at,
                     'attachments', (SELECT coalesce(json_agg(json_build_object(
                                         'filename', a.filename, 'content_type', a.content_type, 'size', a.size)
                                         ORDER BY a.position), '[]'::json)
                                     FROM email_attachments a WHERE a.message_id = e.message_id))
                     ORDER BY e.created_at, e.message_id), '[]'::json)
                 FROM email_messages e WHERE e.message_id = ANY (v_mails) OR e.client_address = ANY (v_addresses))
    )::text;
END
$$;
