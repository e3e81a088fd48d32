-- Queues an item.
-- KEYS: the queue (ZSET), its items (HASH), the item's owner key (which session it is of;
--       spans sessions, see keys.rs).
-- ARGV: itemId, record (JSON), ttlMs, channel, announcement, sessionId, maxItems.
-- Returns 1, or 0 (nothing queued) when the queue already holds maxItems live items.
-- Scores are the item's expiry (Redis's clock, ms) times 1000 plus a per-queue counter, so
-- the queue reads oldest first even within one millisecond, and expired items are dropped by
-- score. The announcement goes out in the same step.
local q, items, owner = KEYS[1], KEYS[2], KEYS[3]
local id, record, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- '%.0f': Lua's own number-to-string keeps 14 digits, and scores have 16.
local live = '(' .. string.format('%.0f', (now + 1) * 1000)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', live)) do
  redis.call('HDEL', items, 'r:' .. old, 't:' .. old, 'a:' .. old)
end
redis.call('ZREMRANGEBYSCORE', q, '-inf', live)
if redis.call('ZCARD', q) >= tonumber(ARGV[7]) then
  return 0
end
local n = redis.call('HINCRBY', items, 'n', 1)
redis.call('ZADD', q, (now + ttl) * 1000 + n % 1000, id)
redis.call('HSET', items, 'r:' .. id, record)
redis.call('PEXPIRE', q, ttl)
redis.call('PEXPIRE', items, ttl)
redis.call('SET', owner, ARGV[6], 'PX', ttl)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
