-- withdraw: a contact leaves before any agent took it (a caller who hung up while waiting, or who left the queue
-- for voicemail). ARGS: conversation, abandoned ("1": the customer gave up, "0": it left for other work), and
-- the contact's interaction and queue as PostgreSQL has them ("" when unknown: only for the event below).
-- Returns {"ok", offers, revoked, {queue, interaction}}, {"assigned", ...} when an agent has accepted it already
-- (nothing changes: the agent holds it until it completes), or {"not_found", ...} when no work waits for it.
-- Invariant: the task is gone from its queue; a pending reservation of it is revoked (the agent's load drops,
-- the agent is matched with what else waits, and a late accept is told `expired`). The conversation is marked
-- withdrawn for WITHDRAWN_MS (P withdrawn:<conversation>), so that a router that recorded the contact before it
-- left, and queues it only now, queues nothing (enqueue.lua).
-- Events: reservation.revoked, when an offer was pending; interaction.abandoned, when the customer gave up —
-- once: also when no work waited yet (the router had not queued it), unless an earlier withdrawal wrote it.
local WITHDRAWN_MS = 3600000
local c, abandoned = ARGS[1], ARGS[2] == '1'
local known_i, known_q = ARGS[3] or '', ARGS[4] or ''
local state, q, i, r = unpack(redis.call('HMGET', task_key(c), 'state', 'queue', 'interaction', 'reservation'))
if state == 'assigned' then return answer('assigned') end
local marked = redis.call('SET', P .. 'withdrawn:' .. c, '1', 'NX', 'PX', WITHDRAWN_MS)
if not state then
  if marked and abandoned and known_i ~= '' and known_q ~= '' then
    emit('interaction.abandoned', known_i, 'interaction:' .. known_i, 'interaction_id', known_i, 'conversation_id',
      c, 'queue_id', known_q)
  end
  return answer('not_found')
end
local freed = nil
if state == 'reserved' and r and r ~= '' then
  freed = redis.call('HGET', reservation_key(r), 'agent')
  revoke(r, REVOKED, 'revoked')
end
redis.call('ZREM', queue_tasks(q), c)
redis.call('DEL', task_key(c))
if abandoned and freed then
  emit('interaction.abandoned', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
    'offered_to', freed)
elseif abandoned then
  emit('interaction.abandoned', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q)
end
if freed then
  refresh_eligibility(freed)
  match_queues(agent_queues(freed))
end
return answer('ok', { q, i })
