-- complete: the agent is done with a conversation. ARGS: agent, conversation, worked ("1", or "0" when the
-- agent could not work on it: it was closed before the accept reached PostgreSQL), wrap-up (ms; 0: none).
-- Returns {"ok"|"not_found", offers, revoked, {}, states}. The task is gone; the agent's load drops. With a
-- wrap-up (worked, and the agent is available or away), the agent is in wrap_up until then — offered nothing —
-- and in P wrapups, where the sweep (expire.lua) ends it; completing again meanwhile moves its end. Without one,
-- the agent is idle since now and matched with what waits in its queues. Events: interaction.completed
-- (conversation.closed is PostgreSQL's, written where the conversation closes), agent.state_changed when the
-- wrap-up starts.
-- Keys besides _lib.lua's: P answered:<interaction> string, the conversation, for ANSWERED_MS after a worked
-- completion: enqueue.lua makes no new task for that contact (a redelivery that read it as waiting before).
local ANSWERED_MS = 600000
local a, c, worked, wrap_ms = ARGS[1], ARGS[2], ARGS[3] == '1', tonumber(ARGS[4] or 0)
local state, holder, q, i = unpack(redis.call('HMGET', task_key(c), 'state', 'agent', 'queue', 'interaction'))
if state ~= 'assigned' or holder ~= a then return answer('not_found') end
redis.call('DEL', task_key(c))
if worked then redis.call('SET', P .. 'answered:' .. i, c, 'PX', ANSWERED_MS) end
emit('interaction.completed', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
  'agent_id', a)
redis.call('HINCRBY', agent_key(a), 'load', -1)
local was = redis.call('HGET', agent_key(a), 'state')
if worked and wrap_ms > 0 and (was == 'available' or was == 'away' or was == 'wrap_up') then
  local wrap_until = NOW + wrap_ms
  if was ~= 'wrap_up' then redis.call('HSET', agent_key(a), 'wrap_return', was) end
  redis.call('HSET', agent_key(a), 'state', 'wrap_up', 'wrap_until', wrap_until)
  redis.call('ZADD', P .. 'wrapups', wrap_until, a)
  agent_state_changed(a, was, 'wrap_up')
  STATES[#STATES + 1] = { a, 'wrap_up', tostring(wrap_until) }
  refresh_eligibility(a)
  return answer('ok')
end
redis.call('HSET', agent_key(a), 'idle_since', NOW)
refresh_eligibility(a)
match_queues(agent_queues(a))
return answer('ok')
