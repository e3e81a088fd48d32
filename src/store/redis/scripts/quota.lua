-- A tenant's quotas, by ARGV[1].
-- KEYS: a held set's expiry ZSET and weights HASH, or a counter STRING (as each op says).
-- `hold`: KEYS expiry ZSET (member -> expiry ms), weights HASH (member -> weight, `#total`);
--   ARGV ttlMs, max, then member/weight pairs. Drops members that expired (up to 1,000 a
--   call) and their weight, then holds every member or none: refused when the total would
--   pass max (a change that adds no weight is always taken). Both keys live until their
--   latest member's expiry. Returns 1 when taken, else 0.
-- `release`: the same KEYS; ARGV member.
-- `admit`: KEYS the sessions' expiry ZSET and weights HASH, then the events counter STRING;
--   ARGV ttlMs, maxSessions (0: not held), n, maxEvents (0: not counted), keepMs, then session
--   ids. Both or neither: returns 0 (taken), 1 (the sessions refused) or 2 (the events).
-- `give_back`: KEYS counter STRING; ARGV n: takes n off (never below 0).
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if op == 'give_back' then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if used > 0 then redis.call('DECRBY', KEYS[1], math.min(used, tonumber(ARGV[2]))) end
  return 1
end

-- Held sets: ZSET `exp` of members by expiry, HASH `w` of their weights and `#total`.
local exp, w = KEYS[1], KEYS[2]

-- Drops up to 1,000 expired members of the held set; returns its live total and the total
-- as it was stored.
local function swept()
  local before = tonumber(redis.call('HGET', w, '#total') or '0')
  local total = before
  local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, 1000)
  for _, m in ipairs(gone) do
    total = total - tonumber(redis.call('HGET', w, m) or '0')
    redis.call('HDEL', w, m)
  end
  if #gone > 0 then redis.call('ZREM', exp, unpack(gone)) end
  return math.max(0, total), before
end

-- Holds the members ARGV[first], weight ARGV[first + 1], ... (step 2, or 1 with weight 1)
-- for ttl unless the total would pass max; returns whether it did. `before` is the stored
-- total (what `swept` read, before its sweep).
local function hold(total, before, ttl, max, first, step)
  local delta = 0
  local weights = {}
  for i = first, #ARGV, step do
    local weight = step == 2 and tonumber(ARGV[i + 1]) or 1
    local old = tonumber(redis.call('HGET', w, ARGV[i]) or '-1')
    weights[i] = old ~= weight
    delta = delta + weight - math.max(old, 0)
  end
  if delta > 0 and total + delta > max then
    if total ~= before then redis.call('HSET', w, '#total', total) end
    return false
  end
  local until_ms = string.format('%.0f', now + ttl)
  for i = first, #ARGV, step do
    if weights[i] then redis.call('HSET', w, ARGV[i], step == 2 and ARGV[i + 1] or '1') end
    redis.call('ZADD', exp, 'GT', until_ms, ARGV[i])
  end
  total = math.max(0, total + delta)
  if total ~= before then redis.call('HSET', w, '#total', total) end
  -- Both keys live until their latest member's expiry, which only moves later.
  redis.call('PEXPIREAT', exp, until_ms, 'GT')
  redis.call('PEXPIREAT', exp, until_ms, 'NX')
  redis.call('PEXPIREAT', w, until_ms, 'GT')
  redis.call('PEXPIREAT', w, until_ms, 'NX')
  return true
end

if op == 'admit' then
  local ttl, maxS, n, maxE, keep = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
    tonumber(ARGV[5]), tonumber(ARGV[6])
  if maxE > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') + n > maxE then return 2 end
  if maxS > 0 then
    local total, before = swept()
    if not hold(total, before, ttl, maxS, 7, 1) then return 1 end
  end
  if maxE > 0 then
    redis.call('INCRBY', KEYS[3], n)
    redis.call('PEXPIRE', KEYS[3], keep, 'NX')
  end
  return 0
end

local total, before = swept()

if op == 'release' then
  local m = ARGV[2]
  local old = tonumber(redis.call('HGET', w, m) or '0')
  -- Nothing held: write nothing (a HSET would make the HASH again, without its expiry).
  if old == 0 and total == before then return 1 end
  redis.call('HDEL', w, m)
  redis.call('ZREM', exp, m)
  redis.call('HSET', w, '#total', math.max(0, total - old))
  return 1
end

local ttl, max = tonumber(ARGV[2]), tonumber(ARGV[3])
return hold(total, before, ttl, max, 4, 2) and 1 or 0
