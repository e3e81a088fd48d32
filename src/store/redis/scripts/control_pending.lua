-- The queue's pending items, oldest first.
-- KEYS: the queue (ZSET), its items (HASH).
-- ARGV: take ("1"/"0"), keep ("1"/"0": taken items stay readable until they expire),
-- maxBytes (an answer stops before it would pass this, always holding at least one item; the
-- rest stay pending for the next read).
-- With take, what is returned leaves the pending items in this same step, so two pollers
-- never get the same item.
local q, items = KEYS[1], KEYS[2]
local take, keep = ARGV[1] == '1', ARGV[2] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- '%.0f': Lua's own number-to-string keeps 14 digits, and scores have 16.
local live = '(' .. string.format('%.0f', (now + 1) * 1000)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', live)) do
  redis.call('HDEL', items, 'r:' .. old, 't:' .. old, 'a:' .. old)
end
redis.call('ZREMRANGEBYSCORE', q, '-inf', live)
local out, bytes, maxBytes = {}, 0, tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGE', q, 0, -1)) do
  if redis.call('HEXISTS', items, 't:' .. id) == 0 then
    local record = redis.call('HGET', items, 'r:' .. id)
    if record and #out > 0 and bytes + #record > maxBytes then
      break
    end
    if record then
      bytes = bytes + #record
      out[#out + 1] = record
      if take then
        if keep then
          redis.call('HSET', items, 't:' .. id, '1')
        else
          redis.call('ZREM', q, id)
          redis.call('HDEL', items, 'r:' .. id)
        end
      end
    else
      redis.call('ZREM', q, id)
    end
  end
end
return out
