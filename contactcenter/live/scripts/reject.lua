-- reject: the agent declines an offer. ARGS: agent, reservation. Returns {"ok"|"not_found", offers, revoked, {}}.
-- The task goes back to the front of its queue (original place); the agent, if still available, goes to the
-- back of the line (idle since now), so another idle agent gets the work first. Event: reservation.rejected.
local a, r = ARGS[1], ARGS[2]
if redis.call('HGET', reservation_key(r), 'agent') ~= a then return answer('not_found') end
local q = revoke(r, nil, 'rejected')
-- Behind every agent now waiting in its queues, even one that became free in this same millisecond.
local last = NOW
for _, aq in ipairs(agent_queues(a)) do
  local tail = redis.call('ZRANGE', queue_agents(aq), -1, -1, 'WITHSCORES')
  if tail[2] and tonumber(tail[2]) >= last then last = tonumber(tail[2]) + 1 end
end
redis.call('HSET', agent_key(a), 'idle_since', last)
refresh_eligibility(a)
match_queue(q)
match_queues(agent_queues(a))
return answer('ok')
