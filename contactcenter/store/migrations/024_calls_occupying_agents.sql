-- A connected call keeps its agent off every channel until it ends (live/scripts/occupy.lua). Live state is in
-- Redis, which may lose it: this is that fact's durable copy, written before live state is told and deleted
-- before the call's end frees the agent there, so that the rebuild of live state (routing/recovery.py) puts every
-- call in progress back on its agent (contactcenter/store/calls.py). Channel-neutral: a call of any provider.
CREATE TABLE agent_calls (
    call_sid text        PRIMARY KEY,
    agent_id uuid        NOT NULL,
    -- When the call frees its agent at the latest, should its final status never come (CC_VOICE_MAX_CALL_SECONDS).
    until    timestamptz NOT NULL
);
-- An agent is on one call at most: a newer call's row replaces the older one's (by agent).
CREATE INDEX agent_calls_by_agent ON agent_calls (agent_id);
-- Rows of calls whose final status never came go once past their bound (by age).
CREATE INDEX agent_calls_by_until ON agent_calls (until);

-- The calls connected before this migration that have not ended: their bound is the default longest call.
INSERT INTO agent_calls (call_sid, agent_id, until)
SELECT DISTINCT ON (agent_id) call_sid, agent_id, connected_at + interval '4 hours'
FROM voice_calls
WHERE connected_at IS NOT NULL AND agent_id IS NOT NULL AND rank < 3 AND connected_at > now() - interval '4 hours'
ORDER BY agent_id, connected_at DESC;
