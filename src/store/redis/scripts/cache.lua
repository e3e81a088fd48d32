-- Every step of one cache namespace, by ARGV[1]: get, put, delete, incr, invalidate, stats,
-- clear. Each first drops entries that expired (from the entries HASH and the index); an
-- entry lives in a HASH field, so its expiry is its `m:` field's and the index's score.
-- KEYS: entries (HASH: `v:{key}` the value's JSON, `m:{key}` "version|expiresMs|tagsJSON"),
-- index (ZSET key -> expiry ms), stats (HASH hits, misses), then tag ZSETs (key -> expiry ms).
-- A ZSET (and the entries HASH) expires with its latest member, so a tag's index never goes
-- before its entries and goes with them; members that expired are dropped at each write.
local entries, index, stats = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local STATS_TTL_MS = 30 * 86400000
local function num(x) return string.format('%.0f', x) end

local gone = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 1000)
for _, k in ipairs(gone) do redis.call('HDEL', entries, 'v:' .. k, 'm:' .. k) end
if #gone > 0 then redis.call('ZREM', index, unpack(gone)) end

-- The live entry's version, expiry and tags (JSON), or nil.
local function meta(key)
  local m = redis.call('HGET', entries, 'm:' .. key)
  if not m then return nil end
  local ver, exp, tags = string.match(m, '^(%d+)|(%d+)|(.*)$')
  if tonumber(exp) <= now then return nil end
  return tonumber(ver), tonumber(exp), tags
end

-- KEYS[i] (a ZSET) lives until its latest member's expiry; the entries HASH follows the index.
local function keep_until(i)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[i], last[2])
    if i == 2 then redis.call('PEXPIREAT', entries, last[2]) end
  end
end

local function count(field)
  redis.call('HINCRBY', stats, field, 1)
  redis.call('PEXPIRE', stats, STATS_TTL_MS)
end

local function store(key, value, ver, exp, tags)
  redis.call('HSET', entries, 'v:' .. key, value, 'm:' .. key, num(ver) .. '|' .. num(exp) .. '|' .. tags)
  redis.call('ZADD', index, num(exp), key)
  keep_until(2)
end

if op == 'get' then
  local ver, exp, tags = meta(ARGV[2])
  if not ver then count('misses'); return false end
  count('hits')
  return {redis.call('HGET', entries, 'v:' .. ARGV[2]), ver, exp, tags}
elseif op == 'put' then
  -- ARGV: key, value, ttlMs, tags JSON, ifVersion ('' for none); tag ZSETs are KEYS[4..]
  local key = ARGV[2]
  local ver = meta(key) or 0
  if ARGV[6] ~= '' and tonumber(ARGV[6]) ~= ver then return {0, ver} end
  local exp = now + tonumber(ARGV[4])
  store(key, ARGV[3], ver + 1, exp, ARGV[5])
  for i = 4, #KEYS do
    redis.call('ZADD', KEYS[i], num(exp), key)
    keep_until(i)
  end
  return {1, ver + 1, exp}
elseif op == 'delete' then
  local live = meta(ARGV[2])
  redis.call('HDEL', entries, 'v:' .. ARGV[2], 'm:' .. ARGV[2])
  redis.call('ZREM', index, ARGV[2])
  if live then return 1 end
  return 0
elseif op == 'incr' then
  -- ARGV: key, by, ttlMs (for a new entry), largest magnitude
  local key = ARGV[2]
  local ver, exp, tags = meta(key)
  local n = tonumber(ARGV[3])
  if ver then
    local v = redis.call('HGET', entries, 'v:' .. key)
    if not string.match(v, '^%-?%d+$') then return {0} end
    n = tonumber(v) + n
  else
    ver, exp, tags = 0, now + tonumber(ARGV[4]), '[]'
  end
  if math.abs(n) > tonumber(ARGV[5]) then return {0} end
  store(key, num(n), ver + 1, exp, tags)
  return {1, num(n), ver + 1, exp}
elseif op == 'invalidate' then
  -- ARGV: the tags' names, in the order of their ZSETs in KEYS[4..]
  local n = 0
  for i = 4, #KEYS do
    local tag = ARGV[i - 2]
    for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], now, '+inf')) do
      local ver, _, tags = meta(key)
      if ver then
        for _, has in ipairs(cjson.decode(tags)) do
          if has == tag then
            redis.call('HDEL', entries, 'v:' .. key, 'm:' .. key)
            redis.call('ZREM', index, key)
            n = n + 1
            break
          end
        end
      end
    end
    redis.call('DEL', KEYS[i])
  end
  return n
elseif op == 'stats' then
  local s = redis.call('HMGET', stats, 'hits', 'misses')
  return {tonumber(s[1]) or 0, tonumber(s[2]) or 0, redis.call('ZCOUNT', index, '(' .. num(now), '+inf')}
elseif op == 'clear' then
  local n = redis.call('ZCOUNT', index, '(' .. num(now), '+inf')
  redis.call('DEL', entries, index)
  return n
end
return redis.error_reply('unknown cache op ' .. op)
