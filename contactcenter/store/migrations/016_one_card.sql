-- One card behind every channel (issue 19): identities of every kind with their raw form, verified or
-- claimed; profile, tags and notes; merges that can be undone; duplicate suggestions; and a card whose first
-- page costs the same at ten entries and at ten thousand.

-- Identities: external ids (an ERP's customer number) beside phones, emails and chat visitors. The raw form
-- is what the channel or the agent gave; `value` is the normalised one that resolves.
ALTER TABLE identities DROP CONSTRAINT identities_kind_check;
ALTER TABLE identities ADD CONSTRAINT identities_kind_check CHECK (kind IN ('phone', 'email', 'visitor', 'external'));
ALTER TABLE identities ADD COLUMN raw_value text;
-- Who put it there: a contact on a channel (`contact`) or an agent (`agent`, a claim until a verified
-- contact confirms it).
ALTER TABLE identities ADD COLUMN source text NOT NULL DEFAULT 'contact' CHECK (source IN ('contact', 'agent'));

-- What the normalised form of a phone identity says about it (contactcenter/identities.py writes the forms):
-- E.164 (`+…`), E.164 with an extension (`+…;ext=…`), a short code (digits only), an alphanumeric sender
-- (letters), or what did not parse, kept as given.
CREATE FUNCTION cc_identity_flags(p_kind text, p_value text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_kind <> 'phone' THEN '{}'::text[]
        WHEN p_value ~ '^\+[0-9]+$' THEN '{}'::text[]
        WHEN p_value ~ '^\+[0-9]+;ext=[0-9]+$' THEN '{extension}'::text[]
        WHEN p_value ~ '^[0-9]{2,8}$' THEN '{short_code}'::text[]
        -- A sender id as carriers pass them: at most 11 letters, digits and a few marks, one letter at least.
        WHEN length(p_value) <= 11 AND p_value ~ '^[A-Za-z0-9 ._&-]*[A-Za-z][A-Za-z0-9 ._&-]*$'
            THEN '{alphanumeric}'::text[]
        ELSE '{unparsed}'::text[]
    END
$$;

-- Identifiers many people share (a switchboard, `anonymous`, a placeholder number): they still reach the
-- card that holds them, but never merge nor count as evidence that two cards are one person.
CREATE TABLE shared_identifiers (
    kind      text        NOT NULL,
    value     text        NOT NULL,
    reason    text        NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
INSERT INTO shared_identifiers (kind, value, reason) VALUES
    ('phone', 'anonymous', 'placeholder'), ('phone', 'ANONYMOUS', 'placeholder'),
    ('phone', 'restricted', 'placeholder'), ('phone', 'RESTRICTED', 'placeholder'),
    ('phone', 'unknown', 'placeholder'), ('phone', 'UNKNOWN', 'placeholder'),
    ('phone', 'private', 'placeholder'), ('phone', 'PRIVATE', 'placeholder'),
    ('phone', '+10000000000', 'placeholder'), ('phone', '+266696687', 'placeholder'),
    ('phone', '+86282452253', 'placeholder'), ('phone', '+7378742833', 'placeholder');

-- The card's own fields. A merged-away card keeps its row, pointing at the card it was merged into: its id
-- keeps answering (with the survivor), and undoing the merge is clearing the pointer.
ALTER TABLE clients ADD COLUMN profile jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE clients ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN merged_into uuid REFERENCES clients (id);
ALTER TABLE clients ADD COLUMN erased_at timestamptz;
CREATE INDEX clients_merged_into ON clients (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE client_notes (
    id          uuid PRIMARY KEY,
    client_id   uuid        NOT NULL REFERENCES clients (id),
    author      text        NOT NULL,  -- 'admin' or 'agent:<id>'
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_notes_by_client ON client_notes (client_id, created_at DESC, id DESC);

-- Who merged which card into which, and why; `undone_at` once undone. The audit of merges.
CREATE TABLE client_merges (
    id          uuid PRIMARY KEY,
    survivor_id uuid        NOT NULL REFERENCES clients (id),
    merged_id   uuid        NOT NULL REFERENCES clients (id),
    actor       text        NOT NULL,
    reason      text        NOT NULL,
    merged_at   timestamptz NOT NULL DEFAULT now(),
    undone_at   timestamptz,
    undone_by   text
);
CREATE INDEX client_merges_by_card ON client_merges (merged_id) WHERE undone_at IS NULL;

-- Counts per channel and the last contact, kept as interactions are written: the card reads a row per
-- channel, never the whole history.
CREATE TABLE client_activity (
    client_id    uuid        NOT NULL REFERENCES clients (id),
    channel      text        NOT NULL,
    interactions bigint      NOT NULL,
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (client_id, channel)
);
INSERT INTO client_activity (client_id, channel, interactions, last_at)
SELECT client_id, channel, count(*), max(received_at) FROM interactions GROUP BY client_id, channel;

CREATE FUNCTION cc_count_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE client_activity SET interactions = interactions - 1
         WHERE client_id = OLD.client_id AND channel = OLD.channel;
    END IF;
    INSERT INTO client_activity AS a (client_id, channel, interactions, last_at)
    VALUES (NEW.client_id, NEW.channel, 1, NEW.received_at)
    ON CONFLICT (client_id, channel) DO UPDATE
        SET interactions = a.interactions + 1, last_at = greatest(a.last_at, EXCLUDED.last_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER interactions_counted AFTER INSERT ON interactions
    FOR EACH ROW EXECUTE FUNCTION cc_count_activity();
CREATE TRIGGER interactions_recounted AFTER UPDATE OF client_id ON interactions
    FOR EACH ROW WHEN (OLD.client_id IS DISTINCT FROM NEW.client_id) EXECUTE FUNCTION cc_count_activity();

-- Duplicate suggestions (contactcenter/cards/matching.py computes them when a card changes), both ways.
CREATE TABLE client_match_suggestions (
    client_id   uuid             NOT NULL REFERENCES clients (id),
    other_id    uuid             NOT NULL REFERENCES clients (id),
    score       double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    reasons     text[]           NOT NULL,
    computed_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, other_id)
);
CREATE INDEX client_match_suggestions_by_other ON client_match_suggestions (other_id);

-- The timeline is read newest first from a cursor (received_at, id), of all channels or one.
CREATE INDEX interactions_timeline_page ON interactions (client_id, received_at DESC, id DESC);
CREATE INDEX interactions_timeline_channel ON interactions (client_id, channel, received_at DESC, id DESC);
DROP INDEX interactions_timeline;

-- The card a merged-away id stands for: follow the pointers up to the card that was not merged away.
CREATE FUNCTION cc_card_root(p_client_id uuid) RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id uuid := p_client_id;
    v_next uuid;
BEGIN
    LOOP
        SELECT merged_into INTO v_next FROM clients WHERE id = v_id;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        EXIT WHEN v_next IS NULL;
        v_id := v_next;
    END LOOP;
    RETURN v_id;
END
$$;

-- Every card that answers as `p_root`: itself and whatever was merged into it, at any depth.
CREATE FUNCTION cc_card_members(p_root uuid) RETURNS uuid[] LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- PL/pgSQL, as every function on the card's path: its plans are kept per connection (a SQL function that
    -- cannot be inlined is planned anew on every call). Most cards have no merged card: one index probe.
    IF NOT EXISTS (SELECT 1 FROM clients WHERE merged_into = p_root) THEN
        RETURN ARRAY[p_root];
    END IF;
    RETURN (
        WITH RECURSIVE m(id) AS (
            SELECT p_root
            UNION ALL
            SELECT c.id FROM clients c JOIN m ON c.merged_into = m.id
        )
        SELECT array_agg(id) FROM m);
END
$$;

-- A page of the timeline of the card made of `p_members`, newest first, strictly after the cursor
-- (`p_before_at`, `p_before_id`; NULL for the first page), of one channel or all: each member's newest
-- entries by its index, then the page from those — its cost follows the page, never the history.
CREATE FUNCTION cc_timeline_page(
    p_members uuid[], p_limit integer, p_before_at timestamptz, p_before_id uuid, p_channel text
) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    WITH page AS (
        SELECT t.* FROM unnest(p_members) AS m(id)
        CROSS JOIN LATERAL (
            SELECT x.id, x.channel, x.direction, x.body, x.received_at, x.conversation_id
            FROM interactions x
            WHERE x.client_id = m.id
              AND (p_channel IS NULL OR x.channel = p_channel)
              AND (p_before_at IS NULL OR (x.received_at, x.id) < (p_before_at, p_before_id))
            ORDER BY x.received_at DESC, x.id DESC
            LIMIT p_limit + 1) t
        ORDER BY t.received_at DESC, t.id DESC
        LIMIT p_limit + 1
    ), numbered AS (
        SELECT p.*, row_number() OVER (ORDER BY p.received_at DESC, p.id DESC) AS n FROM page p
    )
    SELECT json_build_object(
        'entries', coalesce((SELECT json_agg(json_build_object(
                       'id', n.id, 'channel', n.channel, 'direction', n.direction, 'body', n.body,
                       'occurred_at', n.received_at, 'conversation_id', n.conversation_id) ORDER BY n.n)
                   FROM numbered n WHERE n.n <= p_limit), '[]'::json),
        'next_cursor', (SELECT (extract(epoch FROM n.received_at) * 1000000)::bigint || '_' || n.id
                        FROM numbered n WHERE n.n = p_limit AND EXISTS (SELECT 1 FROM numbered k WHERE k.n > p_limit))));
END
$$;

-- The card (schema.ClientCard), now whole: the same signature as migration 005's, so every reader of it (the
-- offer, the desktop's `hello`, the API) shows the same card. Given a merged-away id, the survivor's card.
CREATE OR REPLACE FUNCTION cc_card(p_client_id uuid, p_timeline_limit integer) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_root uuid := cc_card_root(p_client_id);
    v_members uuid[];
    v_page json;
BEGIN
    IF v_root IS NULL THEN
        RETURN NULL;
    END IF;
    v_members := cc_card_members(v_root);
    v_page := cc_timeline_page(v_members, p_timeline_limit, NULL, NULL, NULL);
    RETURN (
        SELECT json_build_object(
            'client', json_build_object('id', c.id, 'display_name', c.display_name, 'created_at', c.created_at,
                                        'merged', to_json(array_remove(v_members, c.id)),
                                        'erased', c.erased_at IS NOT NULL),
            'profile', json_build_object(
                'given_name', c.profile -> 'given_name', 'surname', c.profile -> 'surname',
                'date_of_birth', c.profile -> 'date_of_birth', 'company', c.profile -> 'company',
                'language', c.profile -> 'language',
                'address', CASE WHEN c.profile ? 'address' THEN json_build_object(
                    'line1', c.profile #> '{address,line1}', 'line2', c.profile #> '{address,line2}',
                    'city', c.profile #> '{address,city}', 'postcode', c.profile #> '{address,postcode}',
                    'region', c.profile #> '{address,region}') END),
            'tags', to_json(c.tags),
            'identities', (
                SELECT coalesce(json_agg(json_build_object(
                           'kind', i.kind, 'value', i.value, 'raw', coalesce(i.raw_value, i.value),
                           'verified', i.verified, 'source', i.source, 'flags', to_json(cc_identity_flags(i.kind, i.value)),
                           'shared', s.kind IS NOT NULL)
                       ORDER BY i.created_at, i.kind, i.value), '[]'::json)
                FROM identities i LEFT JOIN shared_identifiers s ON s.kind = i.kind AND s.value = i.value
                WHERE i.client_id = ANY (v_members)),
            'warnings', (
                SELECT coalesce(json_agg(DISTINCT CASE WHEN i.kind = 'phone' THEN 'shared number'
                                                       ELSE 'shared identifier' END), '[]'::json)
                FROM identities i JOIN shared_identifiers s ON s.kind = i.kind AND s.value = i.value
                WHERE i.client_id = ANY (v_members)),
            'counts', (
                SELECT coalesce(json_object_agg(a.channel, a.n ORDER BY a.channel), '{}'::json)
                FROM (SELECT channel, sum(interactions)::bigint AS n FROM client_activity
                      WHERE client_id = ANY (v_members) GROUP BY channel) a),
            'last_contact_at', (SELECT max(last_at) FROM client_activity WHERE client_id = ANY (v_members)),
            'open_conversations', (
                SELECT coalesce(json_agg(json_build_object(
                           'id', v.id, 'channel', v.channel, 'opened_at', v.opened_at,
                           'agent_id', v.agent_id, 'agent_name', a.name) ORDER BY v.opened_at, v.id), '[]'::json)
                FROM conversations v LEFT JOIN agents a ON a.id = v.agent_id
                WHERE v.client_id = ANY (v_members) AND v.state = 'open'),
            'notes', (
                SELECT coalesce(json_agg(json_build_object('id', n.id, 'author', n.author, 'body', n.body,
                                                           'created_at', n.created_at)
                                         ORDER BY n.created_at DESC, n.id DESC), '[]'::json)
                FROM (SELECT nn.* FROM unnest(v_members) AS m(id)
                      CROSS JOIN LATERAL (SELECT * FROM client_notes x WHERE x.client_id = m.id
                                          ORDER BY x.created_at DESC, x.id DESC LIMIT 20) nn
                      ORDER BY nn.created_at DESC, nn.id DESC LIMIT 20) n),
            'possible_matches', (
                SELECT coalesce(json_agg(json_build_object('client_id', p.other_id, 'score', p.score,
                                                           'reasons', to_json(p.reasons))
                                         ORDER BY p.score DESC, p.other_id), '[]'::json)
                FROM (SELECT s.other_id, s.score, s.reasons FROM client_match_suggestions s
                      WHERE s.client_id = v_root AND NOT s.other_id = ANY (v_members)
                        AND NOT EXISTS (SELECT 1 FROM clients o WHERE o.id = s.other_id AND o.merged_into IS NOT NULL)
                      ORDER BY s.score DESC LIMIT 5) p),
            'timeline', v_page -> 'entries',
            'timeline_next', v_page -> 'next_cursor'
        )::text
        FROM clients c WHERE c.id = v_root);
END
$$;

-- Migration 010's recording, now keeping the sender's raw form beside the identity it creates (the card
-- shows both). Signature, outputs and events unchanged.
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
        INSERT INTO identities (kind, value, client_id, verified, raw_value)
        VALUES (p_kind, p_value, o_client_id, p_verified, p_from);
        new_client := true;
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
