-- Releases a held lock for its holder only, keeps its fencing state, and wakes its waiters.
-- KEYS: lock (HASH owner, token, exp (ms), fence), and on one server the index of held locks
-- ARGV: token, control channel, wake-up message, name
-- Returns 1 released, 0 unless the token held the lock.
local lock = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', lock, 'token', 'exp')
if cur[1] ~= ARGV[1] or (tonumber(cur[2]) or 0) <= now then
  return 0
end
redis.call('HDEL', lock, 'owner', 'token')
redis.call('HSET', lock, 'exp', '0')
if KEYS[2] then redis.call('ZREM', KEYS[2], ARGV[4]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
