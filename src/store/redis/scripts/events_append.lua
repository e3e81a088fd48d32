-- Appends a batch of events in one atomic step (docs/redis.md). For each event: find or start
-- the session's stream (epoch, seq), skip it if its eventId is a recent duplicate in this
-- stream, else assign the next seq, RPUSH the stored JSON, trim the oldest past the count cap
-- or the byte cap (the session hash's `_bytes` counts the list's bytes), mark the eventId,
-- create the session when this is its first event, add the usage it reports to its totals,
-- and PUBLISH it. Publishing inside the script makes the channel order of a session its seq
-- order; counting usage here means a duplicate eventId never counts twice.
--
-- KEYS: session index, then per event: session, events, dedup marker; then every event's
--       usage totals (HASHes), in event order.
-- ARGV: maxEvents, ttlSecs, dedupSecs, nowIso, indexPrefix, origin, epochSeed, channel,
--       maxBytes, n (the events), usageMax, publish (PUBLISH, or SPUBLISH for a Cluster's
--       sharded channel), then per event: sessionId, sessionIdAsJson, jsonHead (the stored JSON up to and
--       including '"seq":'), k (its usage totals), k TTLs (s), f, then f pairs of field and
--       increment (added to each of its k totals).
-- Returns per event: {seq, epoch, duplicate (0|1)}.
local index = KEYS[1]
local maxEvents = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local dedupTtl = tonumber(ARGV[3])
local now = ARGV[4]
local indexPrefix = ARGV[5]
local origin = ARGV[6]
local epochSeed = ARGV[7]
local channel = ARGV[8]
local maxBytes = tonumber(ARGV[9])
local n = tonumber(ARGV[10])
local usageMax = tonumber(ARGV[11])
-- Each `redis.call` names its command literally.
local sharded = ARGV[12] == 'SPUBLISH'

local results = {}
local touched = {}
local fresh = 0
-- Events are read from ARGV with a cursor (their usage makes them of different lengths).
local a = 13
local function arg()
  a = a + 1
  return ARGV[a - 1]
end
local usageKey = 2 + 3 * n
for i = 0, n - 1 do
  local sKey, evKey, dedupKey = KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i]
  local sid, sidJson, head = arg(), arg(), arg()
  local ttls = {}
  for j = 1, tonumber(arg()) do ttls[j] = tonumber(arg()) end
  local incr = {}
  for j = 1, tonumber(arg()) do incr[j] = {arg(), tonumber(arg())} end
  local firstUsage = usageKey
  usageKey = usageKey + #ttls
  local epoch = redis.call('HGET', sKey, '_epoch')
  if not epoch then
    fresh = fresh + 1
    epoch = epochSeed .. '-' .. fresh
    if redis.call('HSETNX', sKey, 'id', sid) == 1 then
      local idx = indexPrefix .. sid
      redis.call('HSET', sKey, 'status', 'in_progress', 'startedAt', now, 'updatedAt', now, '_idx', idx)
      redis.call('ZADD', index, 0, idx)
    end
    redis.call('HSET', sKey, '_epoch', epoch, '_seq', 0, '_bytes', 0)
    redis.call('DEL', evKey)
  end
  -- The marker is "{epoch}:{seq}": an eventId of an earlier stream is no duplicate.
  local prior = redis.call('GET', dedupKey)
  local priorEpoch, priorSeq
  if prior then
    priorEpoch, priorSeq = string.match(prior, '^(.*):(%d+)$')
  end
  if priorEpoch == epoch then
    results[#results + 1] = { tonumber(priorSeq), epoch, 1 }
  else
    local seq = redis.call('HINCRBY', sKey, '_seq', 1)
    local stored = head .. seq .. '}'
    local len = redis.call('RPUSH', evKey, stored)
    local bytes = redis.call('HINCRBY', sKey, '_bytes', #stored)
    -- Oldest first, past the count or the bytes; the newest event always stays.
    while len > maxEvents or (bytes > maxBytes and len > 1) do
      local old = redis.call('LPOP', evKey)
      if not old then break end
      len = len - 1
      bytes = redis.call('HINCRBY', sKey, '_bytes', -#old)
    end
    redis.call('SET', dedupKey, epoch .. ':' .. seq, 'EX', dedupTtl)
    -- Each total is read, added to and written whole: a sum past usageMax (exact in Lua's
    -- numbers) stays at it and the total says so (`sat`), so no overflow can stop the
    -- step halfway (HINCRBY's would, after the event was stored).
    for j = 1, #ttls do
      local key = KEYS[firstUsage + j - 1]
      local names = {}
      for k, fv in ipairs(incr) do names[k] = fv[1] end
      local cur = redis.call('HMGET', key, unpack(names))
      local sums = {}
      for k, fv in ipairs(incr) do
        local v = (tonumber(cur[k]) or 0) + fv[2]
        if v > usageMax then
          v = usageMax
          sums[#sums + 1] = 'sat'
          sums[#sums + 1] = '1'
        end
        sums[#sums + 1] = fv[1]
        sums[#sums + 1] = string.format('%.0f', v)
      end
      redis.call('HSET', key, unpack(sums))
      redis.call('EXPIRE', key, ttls[j])
    end
    local message = '{"sessionId":' .. sidJson .. ',"seq":' .. seq .. ',"epoch":"' .. epoch ..
      '","timestamp":"' .. now .. '","origin":"' .. origin .. '","event":' .. stored .. '}'
    if sharded then
      redis.call('SPUBLISH', channel, message)
    else
      redis.call('PUBLISH', channel, message)
    end
    results[#results + 1] = { seq, epoch, 0 }
  end
  touched[sKey] = evKey
end
for sKey, evKey in pairs(touched) do
  redis.call('HSET', sKey, 'updatedAt', now)
  local own = tonumber(redis.call('HGET', sKey, '_ttl')) or ttl
  redis.call('EXPIRE', sKey, own)
  redis.call('EXPIRE', evKey, own)
end
return results
