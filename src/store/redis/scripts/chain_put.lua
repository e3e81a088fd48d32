-- Writes a chain if its version is still the expected one (compare and set), with its
-- indexes, TTLs and announcement, in one step.
-- KEYS: chain HASH, the session's chain list, session, chain index, active chain index, the
--       chain id's owner key (which session the id is of).
-- ARGV: chainId, sessionId as JSON, expected version (0: must not exist), chain JSON,
--       active ("1"/"0"), updated ms, ttl seconds, index member, control channel, sessionId.
-- Returns the new version, or 0 when the stored version was not the expected one or the id
-- is another session's.
local ck, list, sk, all, act, owner = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, sidJson, sid = ARGV[1], ARGV[2], ARGV[10]
local ownedBy = redis.call('GET', owner)
if ownedBy and ownedBy ~= sid then return 0 end
local expected, json, active = tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1'
local updated, ttl, member, channel = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9]
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
-- Index scores are the last update (ms); a member older than the TTL has surely expired.
local t = redis.call('TIME')
local horizon = tonumber(t[1]) * 1000 - ttl * 1000
redis.call('ZADD', all, updated, member)
redis.call('ZREMRANGEBYSCORE', all, '-inf', horizon)
if active then
  redis.call('ZADD', act, updated, member)
else
  redis.call('ZREM', act, member)
end
redis.call('ZREMRANGEBYSCORE', act, '-inf', horizon)
redis.call('PUBLISH', channel,
  '{"kind":"chain","sessionId":' .. sidJson .. ',"chain":' .. json .. '}')
return v + 1
