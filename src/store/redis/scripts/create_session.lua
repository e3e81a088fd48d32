-- Creates a session unless it exists, starts its stream (new epoch, seq 0), indexes it.
-- ARGV: prefix, sessionId, ttlSecs, indexMember, epoch, then field/value pairs.
-- Returns the session HASH, or false when the id is taken.
local p, sid, ttl, idx, epoch = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local sKey = p .. 'sessions:' .. sid
if redis.call('EXISTS', sKey) == 1 then
  return false
end
redis.call('DEL', p .. 'events:' .. sid)
redis.call('HSET', sKey, '_idx', idx, '_epoch', epoch, '_seq', 0, unpack(ARGV, 6))
redis.call('ZADD', p .. 'index:sessions', 0, idx)
redis.call('EXPIRE', sKey, ttl)
return redis.call('HGETALL', sKey)
