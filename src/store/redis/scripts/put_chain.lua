-- Writes a chain if its version is still the expected one (compare and set), with its
-- indexes, TTLs and announcement, in one step.
-- ARGV: prefix, chainId, sessionId, sessionId as JSON, expected version (0: must not exist),
-- chain JSON, active ("1"/"0"), updated ms, ttl seconds.
-- Returns the new version, or 0 when the stored version was not the expected one.
local p, id, sid, sidJson = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expected, json, active = tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1'
local updated, ttl = tonumber(ARGV[8]), tonumber(ARGV[9])
local ck = p .. 'chain:' .. id
local v = tonumber(redis.call('HGET', ck, 'v') or '0')
if v ~= expected then return 0 end
redis.call('HSET', ck, 'json', json, 'v', v + 1, 'sessionId', sid)
redis.call('EXPIRE', ck, ttl)
local list = p .. 'chains:' .. sid
if v == 0 then
  redis.call('RPUSH', list, id)
  local sk = p .. 'sessions:' .. sid
  if redis.call('EXISTS', sk) == 1 then redis.call('HINCRBY', sk, '_chains', 1) end
end
redis.call('EXPIRE', list, ttl)
-- Index scores are the last update (ms); a member older than the TTL has surely expired.
local t = redis.call('TIME')
local horizon = tonumber(t[1]) * 1000 - ttl * 1000
local all, act = p .. 'index:chains', p .. 'index:chains:active'
redis.call('ZADD', all, updated, id)
redis.call('ZREMRANGEBYSCORE', all, '-inf', horizon)
if active then
  redis.call('ZADD', act, updated, id)
else
  redis.call('ZREM', act, id)
end
redis.call('ZREMRANGEBYSCORE', act, '-inf', horizon)
redis.call('PUBLISH', p .. 'control',
  '{"kind":"chain","sessionId":' .. sidJson .. ',"chain":' .. json .. '}')
return v + 1
