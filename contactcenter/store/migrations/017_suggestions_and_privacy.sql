-- Duplicate suggestions (issue 19): the blocks each card is in (contactcenter/matching.py `blocking_keys`).
-- A card is compared only with the cards that share a block, so a suggestion costs a few index reads per
-- change, whatever the number of clients.
CREATE TABLE client_match_keys (
    key       text NOT NULL,
    client_id uuid NOT NULL REFERENCES clients (id),
    PRIMARY KEY (key, client_id)
);
CREATE INDEX client_match_keys_by_client ON client_match_keys (client_id);

-- Privacy (issue 19): a card exported as one JSON document, and erased — personal data gone from every table
-- and from the event payloads kept (and their webhook copies), the counts kept — with an audit row.
CREATE TABLE client_erasures (
    client_id uuid        NOT NULL REFERENCES clients (id),
    actor     text        NOT NULL,
    erased_at timestamptz NOT NULL DEFAULT now(),
    members   uuid[]      NOT NULL,  -- the cards erased with it (merged into it)
    PRIMARY KEY (client_id, erased_at)
);

CREATE FUNCTION cc_export_client(p_client_id uuid) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_root uuid := cc_card_root(p_client_id);
    v_members uuid[];
BEGIN
    IF v_root IS NULL THEN
        RETURN NULL;
    END IF;
    v_members := cc_card_members(v_root);
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
                       'reason', m.reason, 'merged_at', m.merged_at, 'undone_at', m.undone_at) ORDER BY m.merged_at),
                       '[]'::json)
                   FROM client_merges m WHERE m.survivor_id = ANY (v_members) OR m.merged_id = ANY (v_members))
    )::text;
END
$$;

CREATE FUNCTION cc_erase_client(p_client_id uuid, p_actor text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_root uuid := cc_card_root(p_client_id);
    v_members uuid[];
    v_event_ids bigint[];
BEGIN
    IF v_root IS NULL THEN
        RETURN NULL;
    END IF;
    v_members := cc_card_members(v_root);
    PERFORM 1 FROM clients WHERE id = ANY (v_members) FOR UPDATE;
    UPDATE clients SET profile = '{}'::jsonb, tags = '{}', display_name = NULL, erased_at = now()
     WHERE id = ANY (v_members);
    -- The identities go: a later contact from the same number is a stranger's, on a new card.
    DELETE FROM identities WHERE client_id = ANY (v_members);
    -- The interactions stay, emptied: the counts and the conversations' history of who worked what remain.
    UPDATE interactions SET body = '', from_address = '', to_address = '' WHERE client_id = ANY (v_members);
    DELETE FROM client_notes WHERE client_id = ANY (v_members);
    DELETE FROM client_match_keys WHERE client_id = ANY (v_members);
    DELETE FROM client_match_suggestions WHERE client_id = ANY (v_members) OR other_id = ANY (v_members);
    UPDATE client_merges SET reason = '' WHERE survivor_id = ANY (v_members) OR merged_id = ANY (v_members);
    -- Of the events, only identity.added and client.merged carry personal data (the value, the reason).
    WITH erased AS (
        UPDATE events SET data = CASE type WHEN 'identity.added' THEN data || '{"value": ""}'::jsonb
                                           ELSE data || '{"reason": ""}'::jsonb END
         WHERE type IN ('identity.added', 'client.merged') AND (data ->> 'client_id')::uuid = ANY (v_members)
            OR type = 'client.merged' AND ((data ->> 'survivor_id')::uuid = ANY (v_members)
                                           OR (data ->> 'merged_id')::uuid = ANY (v_members))
        RETURNING id, data
    )
    UPDATE webhook_deliveries d
       SET body = convert_to(jsonb_set(convert_from(d.body, 'UTF8')::jsonb, '{data}', e.data)::text, 'UTF8')
      FROM erased e WHERE e.id IS NOT NULL AND d.event_id = e.id::text;
    INSERT INTO client_erasures (client_id, actor, members) VALUES (v_root, p_actor, v_members);
    INSERT INTO events (type, subject, partition_key, data)
    VALUES ('client.erased', v_root, 'client:' || v_root,
            jsonb_build_object('client_id', v_root, 'merged', to_jsonb(array_remove(v_members, v_root)),
                               'actor', p_actor));
    RETURN v_root;
END
$$;
