-- The rest of issue 19's card: merges made by themselves on verified evidence (audited as automatic, with the
-- evidence), identifiers shared by too many cards detected as they are met (not only a seeded list), and an
-- erasure that reaches chat transcripts and claims, stored mail and its attachments, and contacts still on the bus.
-- Redefines cc_export_client and cc_erase_client (from migration 017, their only definition) and
-- cc_record_inbound (the eleven-argument one, from migration 016, its latest).

-- Automatic merges (contactcenter/store/proofs.py): `automatic` and what proved it — the identity, how it was
-- proved (a code the customer received), by whom. Erased with the card (cc_erase_client below).
ALTER TABLE client_merges ADD COLUMN automatic boolean NOT NULL DEFAULT false;
ALTER TABLE client_merges ADD COLUMN evidence jsonb;

-- Shared identifiers, detected (docs/cards.md, "Shared identifiers"). A quarantined identifier is in
-- `shared_identifiers` as before (the card says "shared number"; it never merges nor counts as evidence), now
-- with the number of cards it was seen on when that is why.
ALTER TABLE shared_identifiers ADD COLUMN cards integer;

-- How many distinct cards an identifier may be met on before it is quarantined (one row; an operator changes it
-- by SQL). Three: a couple and a child sharing a landline still merge nothing wrongly, as no card may merge on a
-- claim anyway; a switchboard reaches four cards in a day.
CREATE TABLE shared_identifier_policy (
    single    boolean PRIMARY KEY DEFAULT true CHECK (single),
    max_cards integer NOT NULL CHECK (max_cards >= 1)
);
INSERT INTO shared_identifier_policy (max_cards) VALUES (3);

-- Identifiers an admin took out of quarantine: detection leaves them alone from then on (the admin decided).
CREATE TABLE shared_identifier_releases (
    kind        text        NOT NULL,
    value       text        NOT NULL,
    released_by text        NOT NULL,
    released_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);

-- Cards an identifier was met on other than the one holding it: claimed by a chat visitor, typed by an agent on
-- another card (the 409), proved by a visitor while another card holds it. One row per card.
CREATE TABLE identifier_sightings (
    kind      text        NOT NULL,
    value     text        NOT NULL,
    client_id uuid        NOT NULL REFERENCES clients (id),
    source    text        NOT NULL CHECK (source IN ('chat_claim', 'agent_claim', 'proof')),
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value, client_id)
);
CREATE INDEX identifier_sightings_by_client ON identifier_sightings (client_id);

-- Identifiers that stand for nobody in particular, whatever card they are on: the caller ids carriers and Twilio
-- give a withheld or unknown number (`anonymous`, `restricted`, `unknown`, `private`, `unavailable`, and the
-- numbers Twilio uses for them: +266696687, +86282452253, +7378742833, +2562533, +8656696), all-zero numbers
-- (`+10000000000`), and mail robots' addresses (`mailer-daemon@…`, `postmaster@…`, `no-reply@…`).
CREATE FUNCTION cc_placeholder_identifier(p_kind text, p_value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_kind
        WHEN 'phone' THEN lower(p_value) IN ('anonymous', 'restricted', 'unknown', 'private', 'unavailable',
                                             'withheld', 'blocked', 'no caller id', 'anonymous caller')
                          OR p_value IN ('+266696687', '+86282452253', '+7378742833', '+2562533', '+8656696')
                          OR p_value ~ '^\+?1?0{6,}$'
        WHEN 'email' THEN split_part(p_value, '@', 1) IN ('mailer-daemon', 'postmaster', 'noreply', 'no-reply',
                                                          'donotreply', 'do-not-reply')
        ELSE false
    END
$$;

-- Quarantine an identifier unless an admin released it; true when it is quarantined now (was not before).
CREATE FUNCTION cc_quarantine_identifier(p_kind text, p_value text, p_reason text, p_cards integer)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM shared_identifier_releases WHERE kind = p_kind AND value = p_value) THEN
        RETURN false;
    END IF;
    INSERT INTO shared_identifiers (kind, value, reason, cards) VALUES (p_kind, p_value, p_reason, p_cards)
    ON CONFLICT (kind, value) DO NOTHING;
    RETURN FOUND;
END
$$;

-- A placeholder is quarantined when it first becomes an identity, by whatever path (a contact, an agent, a proof).
CREATE FUNCTION cc_placeholder_met() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cc_quarantine_identifier(NEW.kind, NEW.value, 'placeholder', NULL);
    RETURN NULL;
END
$$;
CREATE TRIGGER identities_placeholders AFTER INSERT ON identities
    FOR EACH ROW WHEN (cc_placeholder_identifier(NEW.kind, NEW.value)) EXECUTE FUNCTION cc_placeholder_met();
INSERT INTO shared_identifiers (kind, value, reason)
SELECT DISTINCT kind, value, 'placeholder' FROM identities WHERE cc_placeholder_identifier(kind, value)
ON CONFLICT (kind, value) DO NOTHING;

-- The identifier was met on the card `p_client` answers as: counted with the card holding it, and quarantined
-- once it is on more distinct cards (merged cards count once) than the policy allows. Under the identifier's
-- advisory lock (the one cc_record_inbound and the card edits take), so two routers or API processes meeting it
-- at once count each other: the later one's count, a statement after the lock, sees the earlier one's row.
-- True when this sighting quarantined it.
CREATE FUNCTION cc_sight_identifier(p_kind text, p_value text, p_client uuid, p_source text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_root uuid := cc_card_root(p_client);
    v_cards integer;
BEGIN
    IF v_root IS NULL OR p_kind NOT IN ('phone', 'email') THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_kind || ':' || p_value, 0));
    INSERT INTO identifier_sightings (kind, value, client_id, source) VALUES (p_kind, p_value, v_root, p_source)
    ON CONFLICT (kind, value, client_id) DO NOTHING;
    IF EXISTS (SELECT 1 FROM shared_identifiers WHERE kind = p_kind AND value = p_value) THEN
        RETURN false;  -- quarantined already: no need to count (a switchboard's count only grows)
    END IF;
    SELECT count(DISTINCT cc_card_root(c.client_id)) INTO v_cards FROM (
        SELECT client_id FROM identifier_sightings WHERE kind = p_kind AND value = p_value
        UNION SELECT client_id FROM identities WHERE kind = p_kind AND value = p_value) c;
    IF v_cards > (SELECT max_cards FROM shared_identifier_policy) THEN
        RETURN cc_quarantine_identifier(p_kind, p_value, 'seen on ' || v_cards || ' cards', v_cards);
    END IF;
    RETURN false;
END
$$;

-- What a chat visitor claims (its email, its phone) is a sighting on the visitor's card, once it has one.
CREATE FUNCTION cc_chat_claims_met() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_card uuid;
BEGIN
    SELECT client_id INTO v_card FROM identities WHERE kind = 'visitor' AND value = NEW.visitor_id::text;
    IF v_card IS NULL THEN
        RETURN NULL;
    END IF;
    IF NEW.claims ? 'email' AND (TG_OP = 'INSERT' OR NEW.claims ->> 'email' IS DISTINCT FROM OLD.claims ->> 'email') THEN
        PERFORM cc_sight_identifier('email', NEW.claims ->> 'email', v_card, 'chat_claim');
    END IF;
    IF NEW.claims ? 'phone' AND (TG_OP = 'INSERT' OR NEW.claims ->> 'phone' IS DISTINCT FROM OLD.claims ->> 'phone') THEN
        PERFORM cc_sight_identifier('phone', NEW.claims ->> 'phone', v_card, 'chat_claim');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER chat_claims_sighted AFTER INSERT OR UPDATE OF claims ON chat_visitors
    FOR EACH ROW WHEN (NEW.claims <> '{}'::jsonb) EXECUTE FUNCTION cc_chat_claims_met();

-- Migration 017's export, its merges now with `automatic` and `evidence` (what the customer proved is theirs too).
CREATE OR REPLACE FUNCTION cc_export_client(p_client_id uuid) RETURNS text LANGUAGE plpgsql STABLE AS $$
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
                       'reason', m.reason, 'automatic', m.automatic, 'evidence', m.evidence,
                       'merged_at', m.merged_at, 'undone_at', m.undone_at) ORDER BY m.merged_at),
                       '[]'::json)
                   FROM client_merges m WHERE m.survivor_id = ANY (v_members) OR m.merged_id = ANY (v_members))
    )::text;
END
$$;

-- Erasure's tombstones: the identities an erased card held, as SHA-256 of `kind:value` (never the value), with
-- the card and the time. A contact received before the erasure and recorded after it (in flight on the bus)
-- finds its sender here and is recorded emptied on the erased card, closed: no personal data comes back, no
-- agent is offered it. A contact received after the erasure is a stranger's, on a new card.
CREATE TABLE identity_tombstones (
    digest    bytea       PRIMARY KEY,
    client_id uuid        NOT NULL REFERENCES clients (id),
    erased_at timestamptz NOT NULL
);

CREATE FUNCTION cc_identity_digest(p_kind text, p_value text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT sha256(convert_to(p_kind || ':' || p_value, 'UTF8')) $$;

-- Migration 017's erasure, reaching further: chat transcripts and claims of the card's visitors, the mail stored
-- for its conversations and sent from its addresses (bodies, raw message, attachments), the caller numbers of
-- its calls, where its identifiers were seen, the evidence of its merges; and a tombstone per identity for the
-- contacts still in flight. Signature and result unchanged.
CREATE OR REPLACE FUNCTION cc_erase_client(p_client_id uuid, p_actor text) RETURNS uuid LANGUAGE plpgsql AS $$
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
    PERFORM 1 FROM clients WHERE id = ANY (v_members) FOR UPDATE;
    UPDATE clients SET profile = '{}'::jsonb, tags = '{}', display_name = NULL, erased_at = now()
     WHERE id = ANY (v_members);

    -- What the identities lead to, read before they go.
    SELECT array_agg(value::uuid) INTO v_visitors FROM identities
     WHERE client_id = ANY (v_members) AND kind = 'visitor'
       AND value ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$';
    SELECT array_agg(value) INTO v_addresses FROM identities WHERE client_id = ANY (v_members) AND kind = 'email';
    SELECT array_agg(provider_id) INTO v_mails FROM interactions
     WHERE client_id = ANY (v_members) AND channel = 'email';
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

    -- Of the events, only identity.added and client.merged carry personal data (the value; the reason and the
    -- evidence).
    WITH erased AS (
        UPDATE events SET data = CASE type WHEN 'identity.added' THEN data || '{"value": ""}'::jsonb
                                           ELSE (data - 'evidence') || '{"reason": ""}'::jsonb END
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

-- Migration 016's recording, with the erasure's tombstones: a sender no card holds, whose identity an erasure
-- took after this contact was received, is recorded on the erased card, emptied, in a closed conversation (no
-- card made, no identity kept, no agent offered it). The tombstone is read only for a sender no card holds.
-- Signature, outputs and events otherwise unchanged.
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

    SELECT v.id, v.queue_id, v.agent_id INTO o_conversation_id, o_queue_id, o_agent_id
      FROM conversations v WHERE v.client_id = o_client_id AND v.channel = p_channel AND v.state = 'open';
    IF NOT FOUND THEN
        -- The queue the contact chose (migration 013), when it serves the channel; else the oldest that serves it.
        SELECT q.id INTO o_queue_id FROM contact_queue_choices c JOIN queues q ON q.name = c.queue_name
         WHERE c.channel = p_channel AND c.provider_id = p_provider_id AND p_channel = ANY (q.channels);
        IF o_queue_id IS NULL THEN
            SELECT q.id INTO o_queue_id FROM queues q
             WHERE p_channel = ANY (q.channels) ORDER BY q.created_at, q.name LIMIT 1;
        END IF;
        o_conversation_id := gen_random_uuid();
        INSERT INTO conversations (id, client_id, channel, queue_id)
        VALUES (o_conversation_id, o_client_id, p_channel, o_queue_id);
        new_conversation := true;
    END IF;

    INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                              from_address, to_address, from_verified, body, received_at)
    VALUES (p_id, p_channel, p_direction, p_provider_id, o_client_id, o_conversation_id,
            p_from, p_to, p_verified, p_body, p_received_at);
    o_interaction_id := p_id;
    o_open := true;
    o_new := true;

    -- The events, in the order a reader tells the story (schema/events.py has each one's data).
    INSERT INTO events (type, subject, partition_key, data)
    VALUES ('interaction.received', p_id, 'interaction:' || p_id,
            jsonb_build_object('interaction_id', p_id, 'conversation_id', o_conversation_id,
                               'client_id', o_client_id, 'channel', p_channel, 'direction', p_direction,
                               'received_at', p_received_at));
    IF new_client THEN
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('client.created', o_client_id, 'client:' || o_client_id,
                jsonb_build_object('client_id', o_client_id));
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('identity.added', o_client_id, 'client:' || o_client_id,
                jsonb_build_object('client_id', o_client_id, 'kind', p_kind, 'value', p_value,
                                   'verified', p_verified));
    END IF;
    IF new_conversation THEN
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('conversation.opened', o_conversation_id, 'conversation:' || o_conversation_id,
                jsonb_build_object('conversation_id', o_conversation_id, 'client_id', o_client_id,
                                   'channel', p_channel, 'queue_id', o_queue_id));
    END IF;
END
$$;
