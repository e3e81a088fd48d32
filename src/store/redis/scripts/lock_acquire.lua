-- Grants a lock unless it is held (checked against Redis's clock).
-- KEYS: lock (HASH owner, token, exp (ms), fence), and on one server the index of held locks
--   (ZSET name -> exp; a Cluster has none: each lock is in a slot of its own)
-- ARGV: owner, token, ttlMs, keepMs (how long the fencing state outlives a grant), name
-- Returns {1, owner, token, fence, exp} granted, or {0, owner, token, fence, exp} held.
local lock = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', lock, 'owner', 'token', 'exp', 'fence')
local exp = tonumber(cur[3]) or 0
local last = tonumber(cur[4]) or 0
if cur[2] and exp > now then
  return {0, cur[1], cur[2], last, exp}
end
local fence = math.max(last + 1, now)
local until_ms = now + tonumber(ARGV[3])
redis.call('HSET', lock, 'owner', ARGV[1], 'token', ARGV[2],
  'exp', string.format('%d', until_ms), 'fence', string.format('%d', fence))
redis.call('PEXPIRE', lock, math.max(tonumber(ARGV[4]), tonumber(ARGV[3])))
if KEYS[2] then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('ZADD', KEYS[2], until_ms, ARGV[5])
end
return {1, ARGV[1], ARGV[2], fence, until_ms}
