-- reject: the agent declines an offer. ARGS: agent, reservation. Returns {"ok"|"not_found", offers, revoked, {}}.
-- The task goes back to the front of its queue (original place); the agent, if still available, goes to the
-- back of the line (idle since now), so another idle agent gets the work first.
local a, r = ARGS[1], ARGS[2]
if redis.call('HGET', reservation_key(r), 'agent') ~= a then return answer('not_found') end
local q = revoke(r, nil)
redis.call('HSET', agent_key(a), 'idle_since', NOW)
refresh_eligibility(a)
match_queue(q)
match_queues(agent_queues(a))
return answer('ok')
