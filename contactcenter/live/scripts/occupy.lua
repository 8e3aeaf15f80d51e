-- occupy: a call was connected to an agent; until it ends the agent takes no work on any channel.
-- ARGS: agent, CallSid, until (ms: when the call frees its agent at the latest, should its final status never
-- come). Returns {"ok"|"same", offers, revoked, {}}.
-- Invariant: an agent is on one call at most; a newer call takes the place of the one it was on (whose end then
-- frees nobody). Occupying again with the same call only moves its bound. The agent's call_since is when its call
-- began to occupy it. Pending offers stay: their agent
-- answers or lets them expire. Out of every queue's agents set while on the call.
-- Events: agent.call_started for a call new to the agent; agent.call_ended for the call it replaces (the agent's
-- older call, or this call's hold on another agent).
local a, sid, bound = ARGS[1], ARGS[2], tonumber(ARGS[3])
local before = redis.call('HGET', agent_key(a), 'call')
if before and before ~= sid then
  redis.call('DEL', P .. 'call:' .. before)
  redis.call('ZREM', P .. 'calls', before)
  emit('agent.call_ended', a, 'agent:' .. a, 'agent_id', a, 'call_sid', before)
end
local holder = redis.call('GET', P .. 'call:' .. sid)
if holder and holder ~= a and redis.call('HGET', agent_key(holder), 'call') == sid then
  redis.call('HDEL', agent_key(holder), 'call')
  emit('agent.call_ended', holder, 'agent:' .. holder, 'agent_id', holder, 'call_sid', sid)
  refresh_eligibility(holder)
  match_queues(agent_queues(holder))
end
redis.call('SET', P .. 'call:' .. sid, a)
redis.call('ZADD', P .. 'calls', bound, sid)
redis.call('HSET', agent_key(a), 'call', sid)
if before ~= sid then
  redis.call('HSET', agent_key(a), 'call_since', NOW)
  emit('agent.call_started', a, 'agent:' .. a, 'agent_id', a, 'call_sid', sid)
end
refresh_eligibility(a)
if before == sid then return answer('same') end
return answer('ok')
