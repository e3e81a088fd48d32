-- A tenant's quotas, by ARGV[1].
-- KEYS: a held set's expiry ZSET and weights HASH, or a counter STRING (as each op says).
-- `hold`: KEYS expiry ZSET (member -> expiry ms), weights HASH (member -> weight, `#total`);
--   ARGV ttlMs, max, then member/weight pairs. Drops members that expired (up to 1,000 a
--   call) and their weight, then holds every member or none: refused when the total would
--   pass max (a change that adds no weight is always taken). Both keys live until their
--   latest member's expiry. Returns {taken 1/0, total}.
-- `release`: the same KEYS; ARGV member. Returns {1, total}.
-- `count`: KEYS counter STRING; ARGV n (negative: given back, never below 0), max, keepMs.
--   Returns {taken 1/0, total}.
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if op == 'count' then
  local key, n, max, keep = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local used = tonumber(redis.call('GET', key) or '0')
  if n > 0 and used + n > max then return {0, used} end
  if n < 0 then
    if used == 0 then return {1, 0} end
    n = math.max(n, -used)
  end
  local total = redis.call('INCRBY', key, n)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, keep) end
  return {1, total}
end

local exp, w = KEYS[1], KEYS[2]
local total = tonumber(redis.call('HGET', w, '#total') or '0')
local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, 1000)
for _, m in ipairs(gone) do
  total = total - tonumber(redis.call('HGET', w, m) or '0')
  redis.call('HDEL', w, m)
end
if #gone > 0 then redis.call('ZREM', exp, unpack(gone)) end
if total < 0 then total = 0 end

if op == 'release' then
  local m = ARGV[2]
  local old = tonumber(redis.call('HGET', w, m) or '0')
  redis.call('HDEL', w, m)
  redis.call('ZREM', exp, m)
  total = math.max(0, total - old)
  redis.call('HSET', w, '#total', total)
  return {1, total}
end

local ttl, max = tonumber(ARGV[2]), tonumber(ARGV[3])
local delta = 0
for i = 4, #ARGV, 2 do
  delta = delta + tonumber(ARGV[i + 1]) - tonumber(redis.call('HGET', w, ARGV[i]) or '0')
end
if delta > 0 and total + delta > max then
  redis.call('HSET', w, '#total', total)
  return {0, total}
end
local until_ms = string.format('%.0f', now + ttl)
for i = 4, #ARGV, 2 do
  redis.call('HSET', w, ARGV[i], ARGV[i + 1])
  redis.call('ZADD', exp, 'GT', until_ms, ARGV[i])
end
total = math.max(0, total + delta)
redis.call('HSET', w, '#total', total)
local last = redis.call('ZRANGE', exp, -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', exp, last[2])
  redis.call('PEXPIREAT', w, last[2])
end
return {1, total}
