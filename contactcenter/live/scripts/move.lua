-- move: a supervisor moves waiting work to another queue. ARGS: conversation, queue.
-- Returns {"ok"|"not_found"|"assigned"|"same", offers, revoked, {previous queue}} ("not_found": no such task).
-- A queued task leaves its queue for the other one at its place there (its score: priority, then arrival); a
-- reserved one is first revoked from its agent, who may then take other work. Work an agent accepted stays
-- with it ("assigned"). Events: reservation.revoked for an offer taken back, interaction.moved, then what the
-- new queue's matching makes.
local c, q = ARGS[1], ARGS[2]
local state, from, r, i = unpack(redis.call('HMGET', task_key(c), 'state', 'queue', 'reservation', 'interaction'))
if not state then return answer('not_found') end
if state == 'assigned' then return answer('assigned', { from }) end
if from == q then return answer('same', { from }) end
local freed = nil
if state == 'reserved' and r and r ~= '' then
  freed = redis.call('HGET', reservation_key(r), 'agent')
  revoke(r, REVOKED, 'revoked')
  if freed then refresh_eligibility(freed) end
end
local score = redis.call('HGET', task_key(c), 'score')
redis.call('ZREM', queue_tasks(from), c)
redis.call('HSET', task_key(c), 'queue', q, 'state', 'queued')
redis.call('ZADD', queue_tasks(q), score, c)
emit('interaction.moved', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
  'previous_queue_id', from)
match_queue(q)
if freed then match_queues(agent_queues(freed)) end
return answer('ok', { from })
