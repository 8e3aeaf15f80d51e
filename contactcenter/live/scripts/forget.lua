-- forget: drop a conversation's task in whatever state (closed elsewhere). ARGS: conversation.
-- Returns {"ok", offers, revoked, {}}; a pending offer of it is revoked, an agent holding it is freed.
local c = ARGS[1]
local state, q, a, r = unpack(redis.call('HMGET', task_key(c), 'state', 'queue', 'agent', 'reservation'))
if not state then return answer('ok') end
if state == 'reserved' then revoke(r, REVOKED) end
redis.call('ZREM', queue_tasks(q), c)
redis.call('DEL', task_key(c))
if state == 'assigned' then
  redis.call('HINCRBY', agent_key(a), 'load', -1)
  redis.call('HSET', agent_key(a), 'idle_since', NOW)
  refresh_eligibility(a)
  match_queues(agent_queues(a))
end
match_queue(q)
return answer('ok')
