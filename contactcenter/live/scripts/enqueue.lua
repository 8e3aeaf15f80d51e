-- enqueue: queue one conversation's work and match its queue.
-- KEYS: none (derived from the prefix, see _lib.lua). ARGS: conversation, queue, interaction, priority.
-- Returns {"ok"|"exists", offers, revoked, {}}.
-- Invariant: one task per conversation — enqueueing it again (a redelivery) changes nothing.
local c, q, i, priority = ARGS[1], ARGS[2], ARGS[3], tonumber(ARGS[4])
if redis.call('EXISTS', task_key(c)) == 1 then return answer('exists') end
-- Higher priority first, then arrival: 10^13 ms is ~300 years, so priorities never mix with time.
local score = NOW - priority * 10000000000000
redis.call('HSET', task_key(c), 'queue', q, 'interaction', i, 'score', score, 'state', 'queued')
redis.call('ZADD', queue_tasks(q), score, c)
match_queue(q)
return answer('ok')
