-- The card at ten million contacts (issue 19). A lookup of a client's open conversations (the recording's
-- `(client_id, channel)` in cc_record_inbound, the card's open conversations in cc_card, a reply's route)
-- is served by `conversations_one_open`. But the two other partial indexes on open conversations matched those
-- statements too — `conversations_open` (opened_at) and `conversations_held_by_agent` (agent_id), both `WHERE
-- state = 'open'` — and whenever the statistics saw few open conversations (after a bulk load, or a vacuum of a
-- quiet night, on a table autovacuum analyses again only after a tenth of it changed) the planner took the
-- smaller one and read every open conversation of the center, filtered by client: 28 buffers and ~0.2 ms a
-- recording at 2,000 open, growing with them (docs/performance.md, "The card at scale"). Each now names what
-- its readers name and a lookup by client does not imply, so no such lookup can take it:
-- - the live state's recovery (OPEN_IN_QUEUES: open conversations that have a queue, oldest first) names
--   `queue_id IS NOT NULL`;
-- - a desktop's `hello` (the conversations an agent holds: `agent_id = $1`) implies `agent_id IS NOT NULL`,
--   which also leaves the conversations waiting for an agent out of that index.
DROP INDEX conversations_open;
CREATE INDEX conversations_open_in_queues ON conversations (opened_at) WHERE state = 'open' AND queue_id IS NOT NULL;
DROP INDEX conversations_held_by_agent;
CREATE INDEX conversations_held_by_agent ON conversations (agent_id) WHERE state = 'open' AND agent_id IS NOT NULL;

-- cc_card as migration 022 wrote it, but for its `claims`: they read the card's visitors as `kind = 'visitor'`
-- among the members' identities, and the planner served that by the primary key's prefix (kind, value) —
-- every visitor identity of the center, filtered by client — whenever its statistics saw few visitors: on a
-- center whose chat visitors outgrew its last analysis (autovacuum analyses identities again only after a tenth
-- of them changed: 200,000 at two million), every card read them all (100,000 visitors not yet analysed: 101,000
-- buffers and 85–270 ms a card, where it is 0.5 ms). The members' identities are read first by client
-- (`OFFSET 0` keeps that subquery whole: the kind is filtered after it), then the visitors among them.
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
            'claims', (
                SELECT coalesce(json_agg(json_build_object(
                           'channel', 'chat', 'visitor_id', v.visitor_id, 'name', v.claims ->> 'name',
                           'email', v.claims ->> 'email', 'phone', v.claims ->> 'phone',
                           'email_verified', coalesce(v.verified_email = v.claims ->> 'email', false))
                       ORDER BY v.created_at, v.visitor_id), '[]'::json)
                -- The card's own identities first, then its visitors among them: read by kind, `visitor` was
                -- served by the primary key's prefix — every visitor of the center (migration 027).
                FROM (SELECT m.kind, m.value FROM identities m WHERE m.client_id = ANY (v_members) OFFSET 0) i
                -- A visitor identity is the visitor's uuid; one typed otherwise (by an agent) has no claims.
                JOIN chat_visitors v ON v.visitor_id = CASE WHEN i.value ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                                                            THEN i.value::uuid END
                WHERE i.kind = 'visitor' AND v.claims <> '{}'::jsonb),
            'timeline', v_page -> 'entries',
            'timeline_next', v_page -> 'next_cursor'
        )::text
        FROM clients c WHERE c.id = v_root);
END
$$;
