-- Shared by every live-state script; the loader prepends it (Redis scripts cannot include each other).
--
-- Every script gets the same head of ARGV:
--   ARGV[1] key prefix ("<namespace>:"), ARGV[2] now in ms, ARGV[3] reservation ttl in ms,
--   ARGV[4] a fresh uuid4 from Python, the base of this run's reservation ids (its last 12 hex digits are
--   replaced by a counter), ARGV[5] "1" when events are on (CC_EVENTS; "0": `emit` writes nothing), then the
--   script's own arguments (ARGS).
-- Keys are derived from the prefix inside the scripts, so all of them must live on one Redis node: on a
-- cluster, give the namespace a hash tag ("{cc}").
--
-- Keys (P = prefix):
--   P agent:<id>            hash  state, load, capacity, queues (comma list), idle_since, call (the CallSid of
--                                 the call the agent is on, while it is on one) and call_since (ms), and while the state is wrap_up:
--                                 wrap_until (ms) and wrap_return (the state it goes back to)
--   P wrapups               zset  agents in wrap-up; score: when it ends (the sweep ends it then)
--   P agent:<id>:offers     set   the agent's pending reservation ids
--   P queue:<id>:agents     zset  agents that may take work now (available, load < capacity); score idle_since
--   P queue:<id>:tasks      zset  queued tasks (conversation ids); score: priority first, then arrival
--   P task:<conversation>   hash  queue, interaction, score, state (queued|reserved|assigned), agent, reservation
--   P reservation:<id>      hash  agent, conversation, queue, interaction, expires
--   P reservations          zset  reservation ids by expiry
--   P reservation:<id>:gone string the agent a reservation was revoked from (expired, or the agent left),
--                                 kept REVOKED_MEMORY_MS so its late accept is told `expired`, not `not_found`
--   P call:<sid>            string the agent a connected call occupies, until the call's final status
--   P calls                 zset  CallSids of connected calls; score: when they free their agent at the latest
--                                 (a final status that never came)
--   P events                stream the events of the changes these scripts make (issue 15), appended in the
--                                 same atomic run as the change; fields type, subject, partition, time (ms),
--                                 then the event's data as field/value pairs (schema/events.py). The relay
--                                 moves entries into PostgreSQL's outbox, keyed by entry id, then deletes them.
-- Agent states: available, away, offline, and wrap_up (after completing work, for the configured time or until
-- the agent sets a state itself; an agent in wrap-up is offered nothing, as it is not available).
-- Invariants: a task is in exactly one of queued/reserved/assigned; an agent's load (pending reservations
-- plus assigned tasks) never exceeds its capacity; an agent is in a queue's agents set only while available
-- with load < capacity and on no call (a call occupies its agent on every channel until it ends); every change other systems are told of has its entry in P events.

local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local TTL = tonumber(ARGV[3])
local ID_BASE = string.sub(ARGV[4], 1, 24)
local ids_made = 0
local EVENTS = ARGV[5] == '1'
local ARGS = {}
for i = 6, #ARGV do ARGS[#ARGS + 1] = ARGV[i] end
local unpack = unpack or table.unpack
-- Bounds the work of one script run, so Redis is never blocked for long.
local MAX_RESERVATIONS = 200
-- Longer than any desktop takes to answer an offer it still shows; the keys expire by themselves.
local REVOKED_MEMORY_MS = 600000

local OFFERS, REVOKED = {}, {}
-- Agents whose state a script moved without their asking (wrap-up started or ended): agent, state, until (ms, or
-- '' when the state has no end). Their desktops are told.
local STATES = {}

local function agent_key(a) return P .. 'agent:' .. a end
local function task_key(c) return P .. 'task:' .. c end
local function reservation_key(r) return P .. 'reservation:' .. r end
local function queue_agents(q) return P .. 'queue:' .. q .. ':agents' end
local function queue_tasks(q) return P .. 'queue:' .. q .. ':tasks' end

-- One event of the change this run makes: other systems learn of it exactly when it happens.
local function emit(event_type, subject, partition, ...)
  if not EVENTS then return end
  redis.call('XADD', P .. 'events', '*', 'type', event_type, 'subject', subject, 'partition', partition,
    'time', NOW, ...)
end

local function split(csv)
  local out = {}
  for item in string.gmatch(csv or '', '[^,]+') do out[#out + 1] = item end
  return out
end

local function agent_queues(a) return split(redis.call('HGET', agent_key(a), 'queues')) end

local function may_take_work(a)
  local state, load, capacity, call = unpack(redis.call('HMGET', agent_key(a), 'state', 'load', 'capacity', 'call'))
  return state == 'available' and tonumber(load or 0) < tonumber(capacity or 1) and not call
end

-- Put the agent into (or take it out of) the agents sets of its queues, as its state and load say.
local function refresh_eligibility(a)
  local idle_since = redis.call('HGET', agent_key(a), 'idle_since') or NOW
  local eligible = may_take_work(a)
  for _, q in ipairs(agent_queues(a)) do
    if eligible then redis.call('ZADD', queue_agents(q), idle_since, a)
    else redis.call('ZREM', queue_agents(q), a) end
  end
end

local function push(list, r, a, c, q, i, expires)
  list[#list + 1] = { r, a, c, q, i, tostring(expires) }
end

local function reserve(c, a, q)
  if ids_made >= MAX_RESERVATIONS then return false end
  ids_made = ids_made + 1
  local r = ID_BASE .. string.format('%012x', ids_made)
  local i = redis.call('HGET', task_key(c), 'interaction')
  local expires = NOW + TTL
  redis.call('ZREM', queue_tasks(q), c)
  redis.call('HSET', task_key(c), 'state', 'reserved', 'agent', a, 'reservation', r)
  redis.call('HSET', reservation_key(r), 'agent', a, 'conversation', c, 'queue', q, 'interaction', i,
    'expires', expires)
  redis.call('ZADD', P .. 'reservations', expires, r)
  redis.call('SADD', agent_key(a) .. ':offers', r)
  redis.call('HINCRBY', agent_key(a), 'load', 1)
  refresh_eligibility(a)
  push(OFFERS, r, a, c, q, i, expires)
  emit('reservation.created', r, 'reservation:' .. r, 'reservation_id', r, 'agent_id', a, 'conversation_id', c,
    'queue_id', q, 'interaction_id', i, 'expires_at_ms', expires)
  emit('interaction.offered', i, 'interaction:' .. i, 'interaction_id', i, 'conversation_id', c, 'queue_id', q,
    'agent_id', a, 'reservation_id', r)
  return true
end

-- Pair the queue's head task with its longest-idle eligible agent, while both exist.
local function match_queue(q)
  while true do
    local task = redis.call('ZRANGE', queue_tasks(q), 0, 0)[1]
    local agent = redis.call('ZRANGE', queue_agents(q), 0, 0)[1]
    if not task or not agent then return end
    if not reserve(task, agent, q) then return end
  end
end

-- Match several queues, the one whose head task waits longest (or matters most) first.
local function match_queues(queues)
  local heads = {}
  for _, q in ipairs(queues) do
    local head = redis.call('ZRANGE', queue_tasks(q), 0, 0, 'WITHSCORES')
    if head[2] then heads[#heads + 1] = { tonumber(head[2]), q } end
  end
  table.sort(heads, function(x, y) return x[1] < y[1] end)
  for _, head in ipairs(heads) do match_queue(head[2]) end
end

-- Take a pending reservation back: the task returns to its queue at its original place, the agent's load
-- drops. `why` names the event: 'rejected', 'expired' or 'revoked'. Returns the queue, or nil when there is
-- no such reservation.
local function revoke(r, reason_list, why)
  local a, c, q, i, expires = unpack(redis.call('HMGET', reservation_key(r), 'agent', 'conversation', 'queue',
    'interaction', 'expires'))
  if not a then return nil end
  redis.call('DEL', reservation_key(r))
  redis.call('ZREM', P .. 'reservations', r)
  redis.call('SREM', agent_key(a) .. ':offers', r)
  redis.call('HINCRBY', agent_key(a), 'load', -1)
  local score = redis.call('HGET', task_key(c), 'score')
  if score then
    redis.call('HSET', task_key(c), 'state', 'queued', 'agent', '', 'reservation', '')
    redis.call('ZADD', queue_tasks(q), score, c)
  end
  emit('reservation.' .. why, r, 'reservation:' .. r, 'reservation_id', r, 'agent_id', a, 'conversation_id', c,
    'queue_id', q, 'interaction_id', i)
  if reason_list then
    push(reason_list, r, a, c, q, i, expires)
    redis.call('SET', reservation_key(r) .. ':gone', a, 'PX', REVOKED_MEMORY_MS)
  end
  return q
end

-- The agent's state moved (not a repeat of the one it had): agent.state_changed.
local function agent_state_changed(a, was, state)
  was = was or 'offline'  -- an agent live state has not seen yet
  if was ~= state then
    emit('agent.state_changed', a, 'agent:' .. a, 'agent_id', a, 'state', state, 'previous', was)
  end
end

-- The call ended (or outlived its bound): its agent is free for work again, idle since now, and matched with
-- what waits in its queues. Returns the agent and when the call began to occupy it (ms), or nil when the call
-- occupied nobody. Event: agent.call_ended.
local function release_call(sid)
  local a = redis.call('GET', P .. 'call:' .. sid)
  redis.call('DEL', P .. 'call:' .. sid)
  redis.call('ZREM', P .. 'calls', sid)
  if not a or redis.call('HGET', agent_key(a), 'call') ~= sid then return nil end
  local since = redis.call('HGET', agent_key(a), 'call_since')
  redis.call('HDEL', agent_key(a), 'call', 'call_since')
  emit('agent.call_ended', a, 'agent:' .. a, 'agent_id', a, 'call_sid', sid)
  redis.call('HSET', agent_key(a), 'idle_since', NOW)
  refresh_eligibility(a)
  match_queues(agent_queues(a))
  return a, since
end

-- The agent's wrap-up is over (its time ran out, or it set a state itself): no longer in P wrapups. Returns the
-- state it was to go back to.
local function clear_wrap_up(a)
  local back = redis.call('HGET', agent_key(a), 'wrap_return') or 'available'
  redis.call('HDEL', agent_key(a), 'wrap_until', 'wrap_return')
  redis.call('ZREM', P .. 'wrapups', a)
  return back
end

-- Every script answers {status, offers, revoked, extra, states} (the scripts' "Returns" name the first four).
local function answer(status, extra)
  return { status, OFFERS, REVOKED, extra or {}, STATES }
end
