-- Every step of one cache namespace, by ARGV[1]: get, put, delete, incr, invalidate, stats,
-- clear, tidy. Each first drops up to 1,000 entries that expired (from the entries HASH and the
-- index); an entry lives in a HASH field, so its expiry is its `m:` field's and the index's
-- score. The work of one call is bounded: expired members go 1,000 at a time, and an
-- invalidation a batch at a time (the gateway calls again until the tags are empty).
-- KEYS: entries (HASH: `v:{key}` the value's JSON, `m:{key}` "version|expiresMs|tagsJSON",
-- and the namespace's hit and miss counts `#hits`, `#misses`), index (ZSET key -> expiry ms),
-- then tag ZSETs (key -> expiry ms).
-- A ZSET (and the entries HASH) expires with its latest member, so a tag's index never goes
-- before its entries and goes with them; members that expired are dropped at each write. The
-- counts live in the entries HASH, so they go with the namespace's last entry, and a read of
-- a namespace that holds nothing creates nothing.
local entries, index = KEYS[1], KEYS[2]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local BATCH = 1000
local function num(x) return string.format('%.0f', x) end

-- (Not in a dry run of `tidy`, which changes nothing.)
if not (op == 'tidy' and ARGV[3] == '1') then
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, BATCH)
  for _, k in ipairs(gone) do redis.call('HDEL', entries, 'v:' .. k, 'm:' .. k) end
  if #gone > 0 then redis.call('ZREM', index, unpack(gone)) end
end

-- The live entry's version, expiry and tags (JSON), or nil.
local function meta(key)
  local m = redis.call('HGET', entries, 'm:' .. key)
  if not m then return nil end
  local ver, exp, tags = string.match(m, '^(%d+)|(%d+)|(.*)$')
  if tonumber(exp) <= now then return nil end
  return tonumber(ver), tonumber(exp), tags
end

-- KEYS[i] (a ZSET) lives until its latest member's expiry; the entries HASH follows the index.
-- A tag's expired members are dropped BATCH at a time (the index's by the sweep above).
local function keep_until(i)
  if i ~= 2 then
    local old = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'LIMIT', 0, BATCH)
    if #old > 0 then redis.call('ZREM', KEYS[i], unpack(old)) end
  end
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[i], last[2])
    if i == 2 then redis.call('PEXPIREAT', entries, last[2]) end
  end
end

local function store(key, value, ver, exp, tags)
  redis.call('HSET', entries, 'v:' .. key, value, 'm:' .. key, num(ver) .. '|' .. num(exp) .. '|' .. tags)
  redis.call('ZADD', index, num(exp), key)
  keep_until(2)
end

if op == 'get' then
  local ver, exp, tags = meta(ARGV[2])
  if not ver then
    -- Counted only where the namespace exists: a miss never makes it.
    if redis.call('EXISTS', entries) == 1 then redis.call('HINCRBY', entries, '#misses', 1) end
    return false
  end
  redis.call('HINCRBY', entries, '#hits', 1)
  return {redis.call('HGET', entries, 'v:' .. ARGV[2]), ver, exp, tags}
elseif op == 'put' then
  -- ARGV: key, value, ttlMs, tags JSON, ifVersion ('' for none); tag ZSETs are KEYS[3..]
  local key = ARGV[2]
  local ver = meta(key) or 0
  if ARGV[6] ~= '' and tonumber(ARGV[6]) ~= ver then return {0, ver} end
  local exp = now + tonumber(ARGV[4])
  store(key, ARGV[3], ver + 1, exp, ARGV[5])
  for i = 3, #KEYS do
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
  -- ARGV: the tags' names, in the order of their ZSETs in KEYS[3..]. Takes up to BATCH
  -- members off the tags, removing each live entry that still carries its tag (a rewrite may
  -- have dropped it): {entries removed, members left on the tags}.
  local n, budget, left = 0, BATCH, 0
  for i = 3, #KEYS do
    local tag = ARGV[i - 1]
    if budget > 0 then
      local members = redis.call('ZRANGE', KEYS[i], 0, budget - 1)
      budget = budget - #members
      for _, key in ipairs(members) do
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
      if #members > 0 then redis.call('ZREM', KEYS[i], unpack(members)) end
    end
    left = left + redis.call('ZCARD', KEYS[i])
  end
  return {n, left}
elseif op == 'stats' then
  local s = redis.call('HMGET', entries, '#hits', '#misses')
  return {tonumber(s[1]) or 0, tonumber(s[2]) or 0, redis.call('ZCOUNT', index, '(' .. num(now), '+inf')}
elseif op == 'tidy' then
  -- `afw-gateway cleanup`, on one tag (KEYS[3]; ARGV: 'tidy', the tag's name, '1' for a dry
  -- run, the rank to start at): of up to BATCH members from there, those whose entry is gone
  -- or no longer carries the tag, counted (dry run) or removed. {stale, members looked at}.
  local tag, dry, from = ARGV[2], ARGV[3] == '1', tonumber(ARGV[4])
  local members = redis.call('ZRANGE', KEYS[3], from, from + BATCH - 1)
  local stale = {}
  for _, key in ipairs(members) do
    local ver, _, tags = meta(key)
    local carried = false
    if ver then
      for _, has in ipairs(cjson.decode(tags)) do
        if has == tag then carried = true; break end
      end
    end
    if not carried then stale[#stale + 1] = key end
  end
  if not dry and #stale > 0 then redis.call('ZREM', KEYS[3], unpack(stale)) end
  return {#stale, #members}
elseif op == 'clear' then
  -- UNLINK: the memory of a large namespace is freed off Redis's main thread.
  local n = redis.call('ZCOUNT', index, '(' .. num(now), '+inf')
  redis.call('UNLINK', entries, index)
  return n
end
return redis.error_reply('unknown cache op ' .. op)
