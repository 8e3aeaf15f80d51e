-- enqueue: queue one conversation's work and match its queue.
-- KEYS: none (derived from the prefix, see _lib.lua). ARGS: conversation, queue, interaction, priority,
-- offer_again ("1" or "0").
-- Returns {"ok"|"exists"|"withdrawn", offers, revoked, {}} — with "exists" for a task an agent has accepted,
-- {agent}; "withdrawn" when the contact left before it was queued (withdraw.lua), so no task is made.
-- Events: interaction.routed for a new task, and reservation.created/interaction.offered when it is matched.
-- Invariant: one task per conversation — enqueueing it again (a redelivery) changes nothing, also once its
-- agent completed it. With offer_again, a task already reserved answers its pending reservation among the
-- offers, unchanged: the attempt that made it may have failed before the agent was told.
local c, q, i, priority, offer_again = ARGS[1], ARGS[2], ARGS[3], tonumber(ARGS[4]), ARGS[5] == '1'
if redis.call('EXISTS', task_key(c)) == 1 then
  local state, r, holder = unpack(redis.call('HMGET', task_key(c), 'state', 'reservation', 'agent'))
  if offer_again and state == 'reserved' then
    local a, rq, ri, expires = unpack(redis.call('HMGET', reservation_key(r), 'agent', 'queue', 'interaction',
      'expires'))
    if a then push(OFFERS, r, a, c, rq, ri, expires) end
  end
  if state == 'assigned' then return answer('exists', { holder }) end
  return answer('exists')
end
-- An agent worked on this contact and completed it since the caller read its conversation as waiting (a
-- redelivery racing the agent; complete.lua's P answered:<interaction>): a new task would offer it twice.
if redis.call('EXISTS', P .. 'answered:' .. i) == 1 then return answer('exists') end
-- The contact left before this router queued it (withdraw.lua's P withdrawn:<conversation>): nothing waits.
if redis.call('EXISTS', P .. 'withdrawn:' .. c) == 1 then return answer('withdrawn') end
-- Higher priority first, then arrival: 10^13 ms is ~300 years, so priorities never mix with time.
local score = NOW - priority * 10000000000000
redis.call('HSET', task_key(c), 'queue', q, 'interaction', i, 'score', score, 'state', 'queued')
redis.call('ZADD', queue_tasks(q), score, c)
emit('interaction.routed', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q)
match_queue(q)
return answer('ok')
