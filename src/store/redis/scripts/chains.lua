-- The chain index's steps, by ARGV[1]: put (a chain written by compare and set, with its
-- indexes, counters, TTLs and announcement), forget (index members whose chain is gone), and
-- counts (the counters by status, after forgetting what expired). The counters are what
-- stats read, so no request decodes every chain.
-- KEYS: chain index (ZSET member -> last update ms), active chain index, stats (HASH
--       `n:{status}` chains and `p:{status}` their progress in hundredths of a percent), meta
--       (HASH member -> "{status}|{progress}", what each indexed chain adds to the counters);
--       then for put: chain HASH, the session's chain list, session, the chain id's owner key.
-- ARGV: op, ttl seconds (the default: an index member older than it has surely expired),
--       then for put: chainId, sessionId as JSON, expected version (0: must not exist),
--       chain JSON, active ("1"/"0"), updated ms, index member, control channel, sessionId,
--       status, progress; for forget: the members.
-- put returns the new version, or 0 when the stored version was not the expected one or the
-- id is another session's; forget the members forgotten; counts the stats HASH.
local all, act, stats, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, ttl = ARGV[1], tonumber(ARGV[2])

-- Takes a member's share out of the counters (it stays in `meta` for the caller to change).
local function uncount(m)
  local was = redis.call('HGET', meta, m)
  if was then
    local status, progress = string.match(was, '^(.*)|(%-?%d+)$')
    redis.call('HINCRBY', stats, 'n:' .. status, -1)
    redis.call('HINCRBY', stats, 'p:' .. status, 0 - tonumber(progress))
  end
end

-- Takes members out of both indexes and their share out of the counters.
local function forget(members)
  for _, m in ipairs(members) do
    uncount(m)
    redis.call('HDEL', meta, m)
  end
  if #members > 0 then
    redis.call('ZREM', all, unpack(members))
    redis.call('ZREM', act, unpack(members))
  end
end

-- Index scores are the last update (ms); a member older than the TTL has surely expired.
-- At most 100 of them per call.
local function prune()
  local t = redis.call('TIME')
  local horizon = tonumber(t[1]) * 1000 - ttl * 1000
  forget(redis.call('ZRANGEBYSCORE', all, '-inf', horizon, 'LIMIT', 0, 100))
  redis.call('ZREMRANGEBYSCORE', act, '-inf', horizon)
end

if op == 'forget' then
  local members = {}
  for i = 3, #ARGV do members[#members + 1] = ARGV[i] end
  forget(members)
  return #members
elseif op == 'counts' then
  prune()
  return redis.call('HGETALL', stats)
end

-- put
local ck, list, sk, owner = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local id, sidJson, sid = ARGV[3], ARGV[4], ARGV[11]
local ownedBy = redis.call('GET', owner)
if ownedBy and ownedBy ~= sid then return 0 end
local expected, json, active = tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1'
local updated, member, channel = tonumber(ARGV[8]), ARGV[9], ARGV[10]
local status, progress = ARGV[12], ARGV[13]
-- A session extended with its own TTL (`_ttl`) gives it to its chains.
local own = tonumber(redis.call('HGET', sk, '_ttl')) or ttl
local v = tonumber(redis.call('HGET', ck, 'v') or '0')
if v ~= expected then return 0 end
redis.call('HSET', ck, 'json', json, 'v', v + 1)
redis.call('EXPIRE', ck, own)
redis.call('SET', owner, sid, 'EX', own)
if v == 0 then
  redis.call('RPUSH', list, id)
  if redis.call('EXISTS', sk) == 1 then redis.call('HINCRBY', sk, '_chains', 1) end
end
redis.call('EXPIRE', list, own)
uncount(member)
redis.call('ZADD', all, updated, member)
if active then
  redis.call('ZADD', act, updated, member)
else
  redis.call('ZREM', act, member)
end
redis.call('HSET', meta, member, status .. '|' .. progress)
redis.call('HINCRBY', stats, 'n:' .. status, 1)
redis.call('HINCRBY', stats, 'p:' .. status, tonumber(progress))
prune()
redis.call('PUBLISH', channel,
  '{"kind":"chain","sessionId":' .. sidJson .. ',"chain":' .. json .. '}')
return v + 1
