-- withdraw: a contact leaves before any agent took it (a caller who hung up while waiting, or who left the queue
-- for voicemail). ARGS: conversation, abandoned ("1": the customer gave up, "0": it left for other work).
-- Returns {"ok", offers, revoked, {queue, interaction}}, {"assigned", ...} when an agent has accepted it already
-- (nothing changes: the agent holds it until it completes), or {"not_found", ...} when no work waits for it.
-- Invariant: the task is gone from its queue; a pending reservation of it is revoked (the agent's load drops,
-- the agent is matched with what else waits, and a late accept is told `expired`).
-- Events: reservation.revoked, when an offer was pending; interaction.abandoned, when the customer gave up.
local c, abandoned = ARGS[1], ARGS[2] == '1'
local state, q, i, r = unpack(redis.call('HMGET', task_key(c), 'state', 'queue', 'interaction', 'reservation'))
if not state then return answer('not_found') end
if state == 'assigned' then return answer('assigned') end
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
