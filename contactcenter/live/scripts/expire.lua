-- expire: take back offers nobody answered in time. ARGS: limit (how many at most in one run).
-- Returns {"ok", offers, revoked, {agent, CallSid, since (ms), ...} (the calls freed at their bound)}. An agent that missed an offer is set away — it is likely not there —
-- and its other pending offers are revoked too; the work is matched again. A connected call past its bound
-- (its final status never came) frees its agent, who is matched too. A wrap-up whose time is up ends: the agent is
-- back in the state it had (available: idle since now, and matched), and among the states returned.
local limit = tonumber(ARGS[1])
local touched = {}
for _, r in ipairs(redis.call('ZRANGEBYSCORE', P .. 'reservations', '-inf', NOW, 'LIMIT', 0, limit)) do
  local a = redis.call('HGET', reservation_key(r), 'agent')
  local q = revoke(r, REVOKED, 'expired')
  if q then touched[#touched + 1] = q end
  if a then
    agent_state_changed(a, redis.call('HGET', agent_key(a), 'state'), 'away')
    redis.call('HSET', agent_key(a), 'state', 'away')
    for _, other in ipairs(redis.call('SMEMBERS', agent_key(a) .. ':offers')) do
      local oq = revoke(other, REVOKED, 'revoked')
      if oq then touched[#touched + 1] = oq end
    end
    refresh_eligibility(a)
  end
end
match_queues(touched)
for _, a in ipairs(redis.call('ZRANGEBYSCORE', P .. 'wrapups', '-inf', NOW, 'LIMIT', 0, limit)) do
  local back = clear_wrap_up(a)
  if redis.call('HGET', agent_key(a), 'state') == 'wrap_up' then
    redis.call('HSET', agent_key(a), 'state', back)
    if back == 'available' then redis.call('HSET', agent_key(a), 'idle_since', NOW) end
    agent_state_changed(a, 'wrap_up', back)
    STATES[#STATES + 1] = { a, back, '' }
    refresh_eligibility(a)
    match_queues(agent_queues(a))
  end
end
local freed = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'calls', '-inf', NOW, 'LIMIT', 0, limit)) do
  local a, since = release_call(sid)
  if a then
    freed[#freed + 1] = a
    freed[#freed + 1] = sid
    freed[#freed + 1] = since or ''
  end
end
return answer('ok', freed)
