-- transfer: the agent hands a conversation it accepted to another queue (or back to its own, for someone else).
-- ARGS: agent, conversation, queue.
-- Returns {"ok"|"not_found", offers, revoked, {previous queue}} ("not_found": not assigned to this agent).
-- The task waits in the queue named again, at the place its first arrival gave it (its score: priority, then
-- arrival), so a transferred customer does not start waiting from the back. The queue is matched while the agent
-- still counts the work in its load: another agent gets it first; the agent only when nobody else is free. Then
-- the agent's load drops, with no wrap-up, and its queues are matched. Events: interaction.transferred, then what
-- the matchings make (conversation.transferred is PostgreSQL's, written where the conversation changes hands).
local a, c, q = ARGS[1], ARGS[2], ARGS[3]
local state, holder, from, i, score = unpack(redis.call('HMGET', task_key(c), 'state', 'agent', 'queue',
  'interaction', 'score'))
if state ~= 'assigned' or holder ~= a then return answer('not_found') end
redis.call('HSET', task_key(c), 'state', 'queued', 'queue', q, 'agent', '', 'reservation', '')
redis.call('ZADD', queue_tasks(q), score, c)
emit('interaction.transferred', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
  'previous_queue_id', from, 'agent_id', a)
match_queue(q)
redis.call('HINCRBY', agent_key(a), 'load', -1)
redis.call('HSET', agent_key(a), 'idle_since', NOW)
refresh_eligibility(a)
match_queues(agent_queues(a))
return answer('ok', { from })
