-- A token bucket shared by every process that takes from it (not a live-state script: loaded on its own,
-- without _lib.lua).
--
-- KEYS[1]  the bucket: a hash {tokens, at} (at: Redis' own clock in ms, so processes' clocks never matter)
-- ARGV[1]  tokens added per second
-- ARGV[2]  the burst: the most tokens the bucket holds, and what a new bucket starts with
-- Returns 1 when a token was taken, 0 when the bucket was empty (nothing changes then but the refill).
-- Invariant: 0 <= tokens <= burst; the key expires once the bucket would be full again, so an idle sender
-- costs nothing and a bucket that is gone is a full one.

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local taken = 0
if tokens >= 1 then
    tokens = tokens - 1
    taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return taken
