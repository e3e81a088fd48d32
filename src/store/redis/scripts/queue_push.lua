-- Queues an item.
-- KEYS: the queue (ZSET), its items (HASH).
-- ARGV: itemId, record (JSON), ttlMs, channel, announcement.
-- Scores are the item's expiry (Redis's clock, ms) times 1000 plus a per-queue counter, so
-- the queue reads oldest first even within one millisecond, and expired items are dropped by
-- score. The announcement goes out in the same step.
local q, items = KEYS[1], KEYS[2]
local id, record, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', '(' .. ((now + 1) * 1000))) do
  redis.call('HDEL', items, 'r:' .. old, 't:' .. old, 'a:' .. old)
end
redis.call('ZREMRANGEBYSCORE', q, '-inf', '(' .. ((now + 1) * 1000))
local n = redis.call('HINCRBY', items, 'n', 1)
redis.call('ZADD', q, (now + ttl) * 1000 + n % 1000, id)
redis.call('HSET', items, 'r:' .. id, record)
redis.call('PEXPIRE', q, ttl)
redis.call('PEXPIRE', items, ttl)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
