-- Acknowledges an item and takes it off the queue.
-- KEYS: the queue (ZSET), its items (HASH).
-- ARGV: itemId, ack (JSON), keep ("1"/"0": the item stays readable until it expires).
-- Returns nil for an unknown or expired item, else {record, first (1/0)}.
local q, items = KEYS[1], KEYS[2]
local id, ack, keep = ARGV[1], ARGV[2], ARGV[3] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', q, id)
if not score or tonumber(score) < (now + 1) * 1000 then return nil end
local record = redis.call('HGET', items, 'r:' .. id)
if not record then return nil end
if redis.call('HEXISTS', items, 'a:' .. id) == 1 then return { record, 0 } end
if keep then
  redis.call('HSET', items, 'a:' .. id, ack, 't:' .. id, '1')
else
  redis.call('ZREM', q, id)
  redis.call('HDEL', items, 'r:' .. id, 't:' .. id)
end
return { record, 1 }
