-- Writes the given fields of an existing session and renews its TTLs. Only the named fields
-- change, so concurrent updates of different fields both survive.
-- ARGV: prefix, sessionId, ttlSecs, then field/value pairs.
-- Returns the session HASH, or false when it does not exist.
local p, sid, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local sKey = p .. 'sessions:' .. sid
if redis.call('EXISTS', sKey) == 0 then
  return false
end
redis.call('HSET', sKey, unpack(ARGV, 4))
redis.call('EXPIRE', sKey, ttl)
redis.call('EXPIRE', p .. 'events:' .. sid, ttl)
return redis.call('HGETALL', sKey)
