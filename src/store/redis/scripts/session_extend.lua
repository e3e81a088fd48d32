-- Gives an existing session a TTL of its own: stored as `_ttl`, used by every renewal after
-- this (events, updates, chain writes), and applied now to its keys.
-- KEYS: session, events, chain list, then its chains' HASHes and owner keys.
-- ARGV: ttlSecs. Returns the session HASH, or false when it does not exist.
local sKey, ttl = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', sKey) == 0 then
  return false
end
redis.call('HSET', sKey, '_ttl', ttl)
for i = 1, #KEYS do
  redis.call('EXPIRE', KEYS[i], ttl)
end
return redis.call('HGETALL', sKey)
