-- Claims a lookup key from an id to the session that owns it, or renews the claim.
-- KEYS: the owner key. ARGV: sessionId, ttlMs.
-- Returns 1 when the id is (now) the session's, 0 when another session owns it.
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
