-- Appends a batch of events in one atomic step (docs/redis.md). For each event: find or start
-- the session's stream (epoch, seq), skip it if its eventId is a recent duplicate in this
-- stream, else assign the next seq, RPUSH the stored JSON, trim the oldest past the count cap
-- or the byte cap (the session hash's `_bytes` counts the list's bytes), mark the eventId,
-- create the session when this is its first event, add the usage it reports to its totals,
-- and PUBLISH it. Publishing inside the script makes the channel order of a session its seq
-- order; counting usage here means a duplicate eventId never counts twice.
--
-- Each session's state is read once (HMGET) and written once (HSET) per call, whatever the
-- number of its events; an eventId the gateway made up (the client sent none, so no retry can
-- repeat it) gets no dedup marker; a session's TTLs are renewed only when they would end
-- sooner than its TTL from now, and then to its TTL plus 1%, so a session lives at least its
-- TTL after its last event (at most 1% more) and renews once per 1% of it, not on every event.
--
-- KEYS: session index, then per event: session, events, its dedup marker when it has one,
--       and its usage totals (HASHes).
-- ARGV: maxEvents, ttlSecs, dedupSecs, nowIso, indexPrefix, origin, epochSeed, channel,
--       maxBytes, usageMax, publish (PUBLISH, or SPUBLISH for a Cluster's sharded channel),
--       n (the events: of one request, or of several stored together), then per event: sessionId, sessionIdAsJson, dedup (1 when it has
--       a marker, else 0), jsonHead (the stored JSON up to and including '"seq":'), k (its
--       usage totals), k TTLs (s), f, then f pairs of field and increment (added to each of
--       its k totals).
-- Returns per event: {seq, epoch, duplicate (0|1)}.
local index = KEYS[1]
local maxEvents = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local dedupTtl = ARGV[3]
local now = ARGV[4]
local indexPrefix = ARGV[5]
local origin = ARGV[6]
local epochSeed = ARGV[7]
local channel = ARGV[8]
local maxBytes = tonumber(ARGV[9])
local usageMax = tonumber(ARGV[10])
-- Each `redis.call` names its command literally.
local sharded = ARGV[11] == 'SPUBLISH'
local n = tonumber(ARGV[12])

local results = {}
-- Per session touched, in order: its keys and stream, as read once and written back once.
local streams = {}
local order = {}
local fresh = 0
-- Events are read from ARGV and KEYS with cursors (their lengths differ).
local a = 13
local function arg()
  a = a + 1
  return ARGV[a - 1]
end
-- An event's keys, from the cursor k: session, events, its marker's when it has one, then
-- its usage totals.
local k = 2
for _ = 1, n do
  local k0 = k
  local sKey, evKey = KEYS[k], KEYS[k + 1]
  k = k + 2
  local sid, sidJson = arg(), arg()
  local dedupKey = KEYS[arg() == '1' and k or 0]
  if dedupKey then k = k + 1 end
  local head = arg()
  local ttls = {}
  for j = 1, tonumber(arg()) do ttls[j] = tonumber(arg()) end
  local incr = {}
  for j = 1, tonumber(arg()) do incr[j] = {arg(), tonumber(arg())} end
  local firstUsage = k
  k = k + #ttls
  local st = streams[sKey]
  if not st then
    local h = redis.call('HMGET', sKey, '_epoch', '_seq', '_bytes', '_ttl')
    st = {k = k0, epoch = h[1], seq = tonumber(h[2]) or 0, bytes = tonumber(h[3]) or 0,
          own = tonumber(h[4]) or ttl}
    if not st.epoch then
      fresh = fresh + 1
      st.epoch = epochSeed .. '-' .. fresh
      st.fresh, st.seq, st.bytes, st.renew = true, 0, 0, true
      if redis.call('HSETNX', sKey, 'id', sid) == 1 then
        local idx = indexPrefix .. sid
        redis.call('HSET', sKey, 'status', 'in_progress', 'startedAt', now, '_idx', idx)
        redis.call('ZADD', index, 0, idx)
      end
      redis.call('DEL', evKey)
    end
    streams[sKey] = st
    order[#order + 1] = st
  end
  local epoch = st.epoch
  local seq = st.seq + 1
  -- The marker is "{epoch}:{seq}": an eventId of an earlier stream is no duplicate.
  local duplicate
  if dedupKey then
    local marker = epoch .. ':' .. seq
    local prior = redis.call('SET', dedupKey, marker, 'NX', 'GET', 'EX', dedupTtl)
    if prior then
      local priorEpoch, priorSeq = string.match(prior, '^(.*):(%d+)$')
      if priorEpoch == epoch then
        duplicate = tonumber(priorSeq)
      else
        redis.call('SET', dedupKey, marker, 'EX', dedupTtl)
      end
    end
  end
  if duplicate then
    results[#results + 1] = { duplicate, epoch, 1 }
  else
    st.seq = seq
    seq = tostring(seq)
    local stored = head .. seq .. '}'
    local len = redis.call('RPUSH', evKey, stored)
    -- A list RPUSH made has no TTL yet.
    if len == 1 then st.renew = true end
    local bytes = st.bytes + #stored
    -- Oldest first, past the count or the bytes; the newest event always stays.
    while len > maxEvents or (bytes > maxBytes and len > 1) do
      local old = redis.call('LPOP', evKey)
      if not old then break end
      len = len - 1
      bytes = bytes - #old
    end
    st.bytes = bytes
    -- Each total is read, added to and written whole: a sum past usageMax (exact in Lua's
    -- numbers) stays at it and the total says so (`sat`), so no overflow can stop the
    -- step halfway (HINCRBY's would, after the event was stored).
    for j = 1, #ttls do
      local uKey = KEYS[firstUsage + j - 1]
      local names = {}
      for m, fv in ipairs(incr) do names[m] = fv[1] end
      local cur = redis.call('HMGET', uKey, unpack(names))
      local sums = {}
      for m, fv in ipairs(incr) do
        local v = (tonumber(cur[m]) or 0) + fv[2]
        if v > usageMax then
          v = usageMax
          sums[#sums + 1] = 'sat'
          sums[#sums + 1] = '1'
        end
        sums[#sums + 1] = fv[1]
        sums[#sums + 1] = string.format('%.0f', v)
      end
      redis.call('HSET', uKey, unpack(sums))
      redis.call('EXPIRE', uKey, ttls[j])
    end
    local message = '{"sessionId":' .. sidJson .. ',"seq":' .. seq .. ',"epoch":"' .. epoch ..
      '","timestamp":"' .. now .. '","origin":"' .. origin .. '","event":' .. stored .. '}'
    if sharded then
      redis.call('SPUBLISH', channel, message)
    else
      redis.call('PUBLISH', channel, message)
    end
    results[#results + 1] = { st.seq, epoch, 0 }
  end
end
for _, st in ipairs(order) do
  local sKey, evKey = KEYS[st.k], KEYS[st.k + 1]
  if st.fresh then
    redis.call('HSET', sKey, '_epoch', st.epoch, '_seq', st.seq, '_bytes', st.bytes, 'updatedAt', now)
  else
    redis.call('HSET', sKey, '_seq', st.seq, '_bytes', st.bytes, 'updatedAt', now)
  end
  if st.renew or redis.call('PTTL', sKey) < st.own * 1000 then
    redis.call('PEXPIRE', sKey, st.own * 1010)
    redis.call('PEXPIRE', evKey, st.own * 1010)
  end
end
return results
