-- complete: the agent is done with a conversation. ARGS: agent, conversation.
-- Returns {"ok"|"not_found", offers, revoked, {}}. The task is gone; the agent's load drops, it is idle
-- since now and matched with what waits in its queues. Event: interaction.completed (conversation.closed is
-- PostgreSQL's, written where the conversation closes).
local a, c = ARGS[1], ARGS[2]
local state, holder, q, i = unpack(redis.call('HMGET', task_key(c), 'state', 'agent', 'queue', 'interaction'))
if state ~= 'assigned' or holder ~= a then return answer('not_found') end
redis.call('DEL', task_key(c))
emit('interaction.completed', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
  'agent_id', a)
redis.call('HINCRBY', agent_key(a), 'load', -1)
redis.call('HSET', agent_key(a), 'idle_since', NOW)
refresh_eligibility(a)
match_queues(agent_queues(a))
return answer('ok')
