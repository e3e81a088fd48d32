-- Appends a batch of events in one atomic step (PROTOCOL §3). For each event: find or start
-- the session's stream (epoch, seq), skip it if its eventId is a recent duplicate, else
-- assign the next seq, RPUSH the stored JSON, LTRIM to the cap, mark the eventId, create the
-- session when this is its first event, and PUBLISH it. Publishing inside the script makes
-- the channel order of a session its seq order.
--
-- ARGV: prefix, maxEvents, ttlSecs, dedupSecs, nowIso, indexPrefix, origin, epochSeed,
--       then per event: sessionId, sessionIdAsJson, eventId, jsonHead (the stored JSON up to
--       and including '"seq":').
-- Returns per event: {seq, epoch, duplicate (0|1)}.
local p = ARGV[1]
local maxEvents = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local dedupTtl = tonumber(ARGV[4])
local now = ARGV[5]
local indexPrefix = ARGV[6]
local origin = ARGV[7]
local epochSeed = ARGV[8]

local results = {}
local touched = {}
local fresh = 0
for i = 9, #ARGV, 4 do
  local sid, sidJson, eid, head = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local sKey = p .. 'sessions:' .. sid
  local epoch = redis.call('HGET', sKey, '_epoch')
  if not epoch then
    fresh = fresh + 1
    epoch = epochSeed .. '-' .. fresh
    if redis.call('HSETNX', sKey, 'id', sid) == 1 then
      local idx = indexPrefix .. sid
      redis.call('HSET', sKey, 'status', 'in_progress', 'startedAt', now, 'updatedAt', now, '_idx', idx)
      redis.call('ZADD', p .. 'index:sessions', 0, idx)
    end
    redis.call('HSET', sKey, '_epoch', epoch, '_seq', 0)
    redis.call('DEL', p .. 'events:' .. sid)
  end
  local dedupKey = p .. 'dedup:' .. sid .. ':' .. epoch .. ':' .. eid
  local prior = redis.call('GET', dedupKey)
  if prior then
    results[#results + 1] = { tonumber(prior), epoch, 1 }
  else
    local seq = redis.call('HINCRBY', sKey, '_seq', 1)
    local stored = head .. seq .. '}'
    local evKey = p .. 'events:' .. sid
    redis.call('RPUSH', evKey, stored)
    redis.call('LTRIM', evKey, -maxEvents, -1)
    redis.call('SET', dedupKey, seq, 'EX', dedupTtl)
    redis.call('PUBLISH', p .. 'events',
      '{"sessionId":' .. sidJson .. ',"seq":' .. seq .. ',"epoch":"' .. epoch ..
      '","timestamp":"' .. now .. '","origin":"' .. origin .. '","event":' .. stored .. '}')
    results[#results + 1] = { seq, epoch, 0 }
  end
  touched[sid] = true
end
for sid, _ in pairs(touched) do
  local sKey = p .. 'sessions:' .. sid
  redis.call('HSET', sKey, 'updatedAt', now)
  redis.call('EXPIRE', sKey, ttl)
  redis.call('EXPIRE', p .. 'events:' .. sid, ttl)
end
return results
