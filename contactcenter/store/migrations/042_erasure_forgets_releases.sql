-- A shared identifier's release is told as `identifier.released` (contactcenter/store/shared_identifiers.py),
-- naming it by the digest its `identifier.quarantined` carries: the erasure empties both the same way, with their
-- stored webhook copies. Migration 038's cc_erase_client with that one change (the events' types below); the
-- digests are read under the card's lock, and migration 041's `events_of_identifier` serves both types.
CREATE OR REPLACE FUNCTION cc_erase_client(p_client_id uuid, p_actor text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_root uuid := cc_card_root(p_client_id);
    v_members uuid[];
    v_visitors uuid[];
    v_addresses text[];
    v_mails text[];
    v_digests text[];
BEGIN
    IF v_root IS NULL THEN
        RETURN NULL;
    END IF;
    v_members := cc_card_members(v_root);
    PERFORM 1 FROM clients WHERE id = ANY (v_members) FOR UPDATE;
    UPDATE clients SET profile = '{}'::jsonb, tags = '{}', display_name = NULL, erased_at = now()
     WHERE id = ANY (v_members);

    -- The card's open conversations close now, whoever holds them; an agent's accept that waited on one of these
    -- rows finds it closed and the agent does not keep it.
    WITH closed AS (
        UPDATE conversations SET state = 'closed', closed_at = now()
         WHERE client_id = ANY (v_members) AND state = 'open'
        RETURNING id, client_id, channel, agent_id, closed_at
    ), released AS (
        INSERT INTO live_releases (conversation_id, agent_id, reason)
        SELECT id, agent_id, 'erased' FROM closed
        ON CONFLICT (conversation_id) DO NOTHING
    )
    INSERT INTO events (type, subject, partition_key, data)
    SELECT 'conversation.closed', c.id, 'conversation:' || c.id,
           jsonb_build_object('conversation_id', c.id, 'client_id', c.client_id, 'channel', c.channel,
                              'agent_id', c.agent_id, 'closed_at', c.closed_at, 'reason', 'erased')
    FROM closed c;

    -- What the identities lead to, read before they go.
    SELECT array_agg(value::uuid) INTO v_visitors FROM identities
     WHERE client_id = ANY (v_members) AND kind = 'visitor'
       AND value ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$';
    SELECT array_agg(value) INTO v_addresses FROM identities WHERE client_id = ANY (v_members) AND kind = 'email';
    SELECT array_agg(provider_id) INTO v_mails FROM interactions
     WHERE client_id = ANY (v_members) AND channel = 'email';
    SELECT array_agg(encode(cc_identity_digest(kind, value), 'hex')) INTO v_digests FROM (
        SELECT kind, value FROM identities WHERE client_id = ANY (v_members)
        UNION SELECT kind, value FROM identifier_sightings WHERE client_id = ANY (v_members)) i;
    INSERT INTO identity_tombstones (digest, client_id, erased_at)
    SELECT cc_identity_digest(kind, value), v_root, now() FROM identities WHERE client_id = ANY (v_members)
    ON CONFLICT (digest) DO UPDATE SET client_id = EXCLUDED.client_id, erased_at = EXCLUDED.erased_at;

    -- The identities go: a later contact from the same number is a stranger's, on a new card.
    DELETE FROM identities WHERE client_id = ANY (v_members);
    -- The interactions stay, emptied: the counts and the conversations' history of who worked what remain.
    UPDATE interactions SET body = '', from_address = '', to_address = '' WHERE client_id = ANY (v_members);
    DELETE FROM client_notes WHERE client_id = ANY (v_members);
    DELETE FROM client_match_keys WHERE client_id = ANY (v_members);
    DELETE FROM client_match_suggestions WHERE client_id = ANY (v_members) OR other_id = ANY (v_members);
    DELETE FROM identifier_sightings WHERE client_id = ANY (v_members);
    UPDATE client_merges SET reason = '', evidence = NULL
     WHERE survivor_id = ANY (v_members) OR merged_id = ANY (v_members);

    -- Chat: the transcripts go (the counter stays, so a resumed visitor's numbers never repeat), and the claims,
    -- the proved email and any code pending.
    DELETE FROM chat_messages WHERE visitor_id = ANY (v_visitors);
    UPDATE chat_visitors SET claims = '{}'::jsonb, verified_email = NULL, email_code_hash = NULL,
                             email_code_until = NULL, email_code_tries = 0
     WHERE visitor_id = ANY (v_visitors);
    -- Mail: each message of the card's conversations and each one its addresses sent (one still in flight
    -- among them) keeps its Message-ID for threading, nothing else; its attachments go.
    DELETE FROM email_attachments WHERE message_id IN (
        SELECT message_id FROM email_messages
         WHERE message_id = ANY (v_mails) OR client_address = ANY (v_addresses));
    UPDATE email_messages SET client_address = '', subject = '', text_body = '', html_body = '', raw = NULL
     WHERE message_id = ANY (v_mails) OR client_address = ANY (v_addresses);
    -- Calls: the caller's number.
    UPDATE voice_calls SET from_number = '' WHERE call_sid IN (
        SELECT provider_id FROM interactions WHERE client_id = ANY (v_members) AND channel = 'voice');

    -- Of the events, identity.added, client.merged, identifier.quarantined and identifier.released carry personal
    -- data (the value; the reason and the evidence; the digest, also in the subject and the partition key).
    WITH erased AS (
        UPDATE events
           SET data = CASE WHEN type = 'identity.added' THEN data || '{"value": ""}'::jsonb
                           WHEN type IN ('identifier.quarantined', 'identifier.released')
                               THEN data || '{"digest": ""}'::jsonb
                           ELSE (data - 'evidence') || '{"reason": ""}'::jsonb END,
               subject = CASE WHEN type IN ('identifier.quarantined', 'identifier.released') THEN ''
                              ELSE subject END,
               partition_key = CASE WHEN type IN ('identifier.quarantined', 'identifier.released')
                                    THEN 'identifier:' ELSE partition_key END
         WHERE type IN ('identity.added', 'client.merged') AND (data ->> 'client_id')::uuid = ANY (v_members)
            OR type = 'client.merged' AND ((data ->> 'survivor_id')::uuid = ANY (v_members)
                                           OR (data ->> 'merged_id')::uuid = ANY (v_members))
            OR type IN ('identifier.quarantined', 'identifier.released') AND data ->> 'digest' = ANY (v_digests)
        RETURNING id, subject, partition_key, data
    )
    UPDATE webhook_deliveries d
       SET body = convert_to(jsonb_set(jsonb_set(jsonb_set(
                      convert_from(d.body, 'UTF8')::jsonb, '{data}', e.data), '{subject}', to_jsonb(e.subject)),
                      '{partitionkey}', to_jsonb(e.partition_key))::text, 'UTF8')
      FROM erased e WHERE e.id IS NOT NULL AND d.event_id = e.id::text;
    INSERT INTO client_erasures (client_id, actor, members) VALUES (v_root, p_actor, v_members);
    INSERT INTO events (type, subject, partition_key, data)
    VALUES ('client.erased', v_root, 'client:' || v_root,
            jsonb_build_object('client_id', v_root, 'merged', to_jsonb(array_remove(v_members, v_root)),
                               'actor', p_actor));
    RETURN v_root;
END
$$;
