-- No query looks conversations up by agent (accept, reply and complete all name the conversation), yet every
-- assignment and close paid for this index, and while dead entries waited for a vacuum the planner, seeing an
-- index on each side of `id = u.id AND agent_id = u.agent_id`, could walk an agent's whole history through it.
DROP INDEX conversations_by_agent;
