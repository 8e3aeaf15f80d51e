-- restore: put one open conversation back after Redis lost live state (rebuilt from PostgreSQL).
-- ARGS: conversation, queue, interaction, enqueued at (ms), agent ('' when nobody has accepted it yet).
-- Returns {"ok"|"exists", offers, revoked, {}}.
-- Accepted work goes back to its agent as assigned (counting in its load); unaccepted work is queued in its
-- original order and matched. A conversation already in live state is left as it is.
local c, q, i, enqueued, a = ARGS[1], ARGS[2], ARGS[3], tonumber(ARGS[4]), ARGS[5]
if redis.call('EXISTS', task_key(c)) == 1 then return answer('exists') end
if a ~= '' then
  redis.call('HSET', task_key(c), 'queue', q, 'interaction', i, 'score', enqueued, 'state', 'assigned', 'agent', a)
  if redis.call('HEXISTS', agent_key(a), 'state') == 0 then
    redis.call('HSET', agent_key(a), 'state', 'offline', 'capacity', 1, 'queues', '')
  end
  redis.call('HINCRBY', agent_key(a), 'load', 1)
  refresh_eligibility(a)
  return answer('ok')
end
redis.call('HSET', task_key(c), 'queue', q, 'interaction', i, 'score', enqueued, 'state', 'queued')
redis.call('ZADD', queue_tasks(q), enqueued, c)
match_queue(q)
return answer('ok')
