-- A desktop that connects is told the conversations its agent holds (`hello`): look them up by agent.
-- Migration 004 dropped the index this brings back, as no query read it then. Its cost is the one 004 named:
-- an assignment changes an indexed column, so it is no longer a HOT update. Partial, as before: closed
-- conversations (nearly all of them) leave it once vacuumed, so it stays as small as the work in hand.
-- (The planner keeps the primary key for assign and close, `id` being unique: checked with EXPLAIN.)
CREATE INDEX conversations_held_by_agent ON conversations (agent_id) WHERE state = 'open';
