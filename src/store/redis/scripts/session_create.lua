-- Creates a session unless it exists, starts its stream (new epoch, seq 0), indexes it.
-- KEYS: session, events, session index.
-- ARGV: ttlSecs, indexMember, epoch, then field/value pairs.
-- Returns the session HASH, or false when the id is taken.
local sKey, evKey, index = KEYS[1], KEYS[2], KEYS[3]
local ttl, idx, epoch = tonumber(ARGV[1]), ARGV[2], ARGV[3]
if redis.call('EXISTS', sKey) == 1 then
  return false
end
redis.call('DEL', evKey)
redis.call('HSET', sKey, '_idx', idx, '_epoch', epoch, '_seq', 0, unpack(ARGV, 4))
redis.call('ZADD', index, 0, idx)
redis.call('EXPIRE', sKey, ttl)
return redis.call('HGETALL', sKey)
