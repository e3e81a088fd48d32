-- Writes the given fields of an existing session and renews its TTLs. Only the named fields
-- change, so concurrent updates of different fields both survive.
-- KEYS: session, events. ARGV: ttlSecs, then field/value pairs.
-- Returns the session HASH, or false when it does not exist.
local sKey, evKey, ttl = KEYS[1], KEYS[2], tonumber(ARGV[1])
if redis.call('EXISTS', sKey) == 0 then
  return false
end
redis.call('HSET', sKey, unpack(ARGV, 2))
-- A session extended with its own TTL (`_ttl`) keeps it.
ttl = tonumber(redis.call('HGET', sKey, '_ttl')) or ttl
redis.call('EXPIRE', sKey, ttl)
redis.call('EXPIRE', evKey, ttl)
return redis.call('HGETALL', sKey)
