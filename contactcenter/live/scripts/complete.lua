-- complete: the agent is done with a conversation. ARGS: agent, conversation, worked ("1", or "0" when the
-- agent could not work on it: it was closed before the accept reached PostgreSQL).
-- Returns {"ok"|"not_found", offers, revoked, {}}. The task is gone; the agent's load drops, it is idle
-- since now and matched with what waits in its queues. Event: interaction.completed (conversation.closed is
-- PostgreSQL's, written where the conversation closes).
-- Keys besides _lib.lua's: P answered:<interaction> string, the conversation, for ANSWERED_MS after a worked
-- completion: enqueue.lua makes no new task for that contact (a redelivery that read it as waiting before).
local ANSWERED_MS = 600000
local a, c, worked = ARGS[1], ARGS[2], ARGS[3] == '1'
local state, holder, q, i = unpack(redis.call('HMGET', task_key(c), 'state', 'agent', 'queue', 'interaction'))
if state ~= 'assigned' or holder ~= a then return answer('not_found') end
redis.call('DEL', task_key(c))
if worked then redis.call('SET', P .. 'answered:' .. i, c, 'PX', ANSWERED_MS) end
emit('interaction.completed', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
  'agent_id', a)
redis.call('HINCRBY', agent_key(a), 'load', -1)
redis.call('HSET', agent_key(a), 'idle_since', NOW)
refresh_eligibility(a)
match_queues(agent_queues(a))
return answer('ok')
