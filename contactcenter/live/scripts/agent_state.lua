-- agent_state: an agent becomes available, away or offline, for the given queues and capacity.
-- ARGS: agent, state, capacity, queues (comma list). Returns {"ok", offers, revoked, {}}.
-- Available: eligible in its queues while load < capacity (idle since now, unless it already was available),
-- then matched. Away/offline: out of every queue, and its pending offers go back to their queues, where
-- another agent may get them. Accepted (assigned) work stays with the agent.
-- Any state the agent asks for ends its wrap-up (available: "ready"); its pending offers (none: an agent in
-- wrap-up is offered nothing) go back as for away.
-- Events: agent.state_changed when the state moves, reservation.revoked for each offer taken back.
local a, state, capacity, queues_csv = ARGS[1], ARGS[2], tonumber(ARGS[3]), ARGS[4]
local key = agent_key(a)
for _, q in ipairs(agent_queues(a)) do redis.call('ZREM', queue_agents(q), a) end
local was = redis.call('HGET', key, 'state')
if was == 'wrap_up' then clear_wrap_up(a) end
if redis.call('HEXISTS', key, 'load') == 0 then redis.call('HSET', key, 'load', 0) end
redis.call('HSET', key, 'state', state, 'capacity', capacity, 'queues', queues_csv)
agent_state_changed(a, was, state)
if state == 'available' and was ~= 'available' then redis.call('HSET', key, 'idle_since', NOW) end
local touched = split(queues_csv)
if state ~= 'available' then
  for _, r in ipairs(redis.call('SMEMBERS', key .. ':offers')) do
    local q = revoke(r, REVOKED, 'revoked')
    if q then touched[#touched + 1] = q end
  end
end
refresh_eligibility(a)
match_queues(touched)
return answer('ok')
