-- The timeline's page planned once per connection, not once per page (migration 029 left it planned for its
-- values: ~0.5 ms of planning on every card, most of PostgreSQL's planning per contact; docs/performance.md,
-- "Tenth session"). Its one statement read each member's entries with two optional conditions written as ORs
-- (`p_channel IS NULL OR x.channel = p_channel`, the same for the cursor): only the values told the planner
-- which index and which order, so a generic plan read the client's whole history through a filter, or sorted
-- it, where the values would have read the page from the index and stopped.
--
-- Now each member's entries come from `cc_timeline_entries`, four small statements, one per case (channel or
-- not, cursor or not), each with its conditions as the index's own: planned once per connection, each reads
-- its index in order from the cursor and stops after the page, whatever the client's size. A generic plan is
-- costed without the page's size, and for a client of few entries reading them all and sorting them costs
-- about the same as reading the index in order — until the client has 10,000: with sorts off the planner
-- only has the index's order to choose (tests/contract/test_card_cost.py).

-- One member's entries newest first, strictly after the cursor (`p_before_at`, `p_before_id`; NULL: from the
-- newest), of one channel or all, at most `p_limit`.
CREATE FUNCTION cc_timeline_entries(
    p_member uuid, p_limit integer, p_before_at timestamptz, p_before_id uuid, p_channel text
) RETURNS TABLE (
    entry_id uuid, entry_channel text, entry_direction text, entry_body text, entry_at timestamptz,
    entry_conversation_id uuid
) LANGUAGE plpgsql STABLE ROWS 50 AS $$
BEGIN
    IF p_channel IS NULL AND p_before_at IS NULL THEN
        RETURN QUERY
            SELECT x.id, x.channel, x.direction, x.body, x.received_at, x.conversation_id
            FROM interactions x
            WHERE x.client_id = p_member
            ORDER BY x.received_at DESC, x.id DESC LIMIT p_limit;
    ELSIF p_before_at IS NULL THEN
        RETURN QUERY
            SELECT x.id, x.channel, x.direction, x.body, x.received_at, x.conversation_id
            FROM interactions x
            WHERE x.client_id = p_member AND x.channel = p_channel
            ORDER BY x.received_at DESC, x.id DESC LIMIT p_limit;
    ELSIF p_channel IS NULL THEN
        RETURN QUERY
            SELECT x.id, x.channel, x.direction, x.body, x.received_at, x.conversation_id
            FROM interactions x
            WHERE x.client_id = p_member AND (x.received_at, x.id) < (p_before_at, p_before_id)
            ORDER BY x.received_at DESC, x.id DESC LIMIT p_limit;
    ELSE
        RETURN QUERY
            SELECT x.id, x.channel, x.direction, x.body, x.received_at, x.conversation_id
            FROM interactions x
            WHERE x.client_id = p_member AND x.channel = p_channel
              AND (x.received_at, x.id) < (p_before_at, p_before_id)
            ORDER BY x.received_at DESC, x.id DESC LIMIT p_limit;
    END IF;
END
$$;
ALTER FUNCTION cc_timeline_entries(uuid, integer, timestamptz, uuid, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION cc_timeline_entries(uuid, integer, timestamptz, uuid, text) SET enable_sort = off;

-- Migration 016's page, its members' entries now from `cc_timeline_entries`: the same answer (`entries`,
-- `next_cursor`), the page made of at most `p_limit + 1` entries of each member.
CREATE OR REPLACE FUNCTION cc_timeline_page(
    p_members uuid[], p_limit integer, p_before_at timestamptz, p_before_id uuid, p_channel text
) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    WITH page AS (
        SELECT t.* FROM unnest(p_members) AS m(id)
        CROSS JOIN LATERAL cc_timeline_entries(m.id, p_limit + 1, p_before_at, p_before_id, p_channel) t
        ORDER BY t.entry_at DESC, t.entry_id DESC
        LIMIT p_limit + 1
    ), numbered AS (
        SELECT p.*, row_number() OVER (ORDER BY p.entry_at DESC, p.entry_id DESC) AS n FROM page p
    )
    SELECT json_build_object(
        'entries', coalesce((SELECT json_agg(json_build_object(
                       'id', n.entry_id, 'channel', n.entry_channel, 'direction', n.entry_direction,
                       'body', n.entry_body, 'occurred_at', n.entry_at,
                       'conversation_id', n.entry_conversation_id) ORDER BY n.n)
                   FROM numbered n WHERE n.n <= p_limit), '[]'::json),
        'next_cursor', (SELECT (extract(epoch FROM n.entry_at) * 1000000)::bigint || '_' || n.entry_id
                        FROM numbered n WHERE n.n = p_limit AND EXISTS (SELECT 1 FROM numbered k WHERE k.n > p_limit))));
END
$$;
-- Its one statement merges the members' pages (at most `p_limit + 1` entries each, already in order): the same
-- plan for every call.
ALTER FUNCTION cc_timeline_page(uuid[], integer, timestamptz, uuid, text) SET plan_cache_mode = force_generic_plan;
