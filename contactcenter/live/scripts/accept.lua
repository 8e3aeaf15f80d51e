-- accept: the agent takes the work it was offered. ARGS: agent, reservation.
-- Returns {"ok", offers, revoked, {conversation, queue, interaction, expires}}, {"not_found", ...} when the
-- reservation is not this agent's, or {"expired", ...} when its time ran out (then it is revoked and matched)
-- or it was revoked from this agent already (the sweep took it back, or the agent went away).
-- Invariant: the task turns from reserved to assigned; the agent's load is unchanged. Accepting again a
-- reservation this agent already accepted answers "ok" again, unchanged (and emits nothing again): the gateway
-- records the assignment in PostgreSQL after this, and when that fails the desktop is told to try again — the
-- retry must reach it.
-- Keys besides _lib.lua's: P accepted:<reservation> string, the conversation, for ACCEPTED_MS after the accept.
-- Events: reservation.accepted and interaction.answered (or reservation.expired when its time ran out). The
-- interaction's events all come from here, its offer's stream, so they keep their order.
local ACCEPTED_MS = 600000
local a, r = ARGS[1], ARGS[2]
local holder, c, q, i, expires = unpack(redis.call('HMGET', reservation_key(r), 'agent', 'conversation', 'queue',
  'interaction', 'expires'))
if holder ~= a then
  if not holder then
    local done = redis.call('GET', P .. 'accepted:' .. r)
    if done then
      local state, agent, dq, di = unpack(redis.call('HMGET', task_key(done), 'state', 'agent', 'queue',
        'interaction'))
      if state == 'assigned' and agent == a then return answer('ok', { done, dq, di, tostring(NOW) }) end
    end
  end
  if redis.call('GET', reservation_key(r) .. ':gone') == a then return answer('expired') end
  return answer('not_found')
end
if tonumber(expires) <= NOW then
  revoke(r, REVOKED, 'expired')
  refresh_eligibility(a)
  match_queue(q)
  return answer('expired')
end
redis.call('DEL', reservation_key(r))
redis.call('ZREM', P .. 'reservations', r)
redis.call('SREM', agent_key(a) .. ':offers', r)
redis.call('HSET', task_key(c), 'state', 'assigned', 'agent', a, 'reservation', '')
redis.call('SET', P .. 'accepted:' .. r, c, 'PX', ACCEPTED_MS)
emit('reservation.accepted', r, 'reservation:' .. r, 'reservation_id', r, 'agent_id', a, 'conversation_id', c,
  'queue_id', q, 'interaction_id', i)
emit('interaction.answered', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
  'agent_id', a)
return answer('ok', { c, q, i, tostring(expires) })
