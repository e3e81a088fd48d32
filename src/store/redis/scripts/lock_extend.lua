-- Extends a held lock for its holder only.
-- KEYS: lock (HASH owner, token, exp (ms), fence), and on one server the index of held locks
-- ARGV: token, ttlMs, keepMs, name
-- Returns {owner, token, fence, exp}, or false unless the token holds the lock.
local lock = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', lock, 'owner', 'token', 'exp', 'fence')
if cur[2] ~= ARGV[1] or (tonumber(cur[3]) or 0) <= now then
  return false
end
local until_ms = now + tonumber(ARGV[2])
redis.call('HSET', lock, 'exp', string.format('%d', until_ms))
redis.call('PEXPIRE', lock, math.max(tonumber(ARGV[3]), tonumber(ARGV[2])))
if KEYS[2] then redis.call('ZADD', KEYS[2], until_ms, ARGV[4]) end
return {cur[1], cur[2], tonumber(cur[4]), until_ms}
