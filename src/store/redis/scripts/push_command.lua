-- Queues a command. ARGV: prefix, sessionId, sessionId as JSON, commandId, record (JSON), ttlMs.
-- The command's HASH holds its record, session and status and expires on its own clock; the
-- session's pending ZSET is scored by expiry (Redis's clock), so it reads oldest first and
-- expired members are dropped by score. The announcement goes out in the same step.
local p, sid, sidJson, id, record = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ttl = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ck = p .. 'command:' .. id
local q = p .. 'commands:' .. sid
redis.call('HSET', ck, 'record', record, 'sessionId', sid, 'status', 'pending')
redis.call('PEXPIRE', ck, ttl)
redis.call('ZREMRANGEBYSCORE', q, '-inf', now)
redis.call('ZADD', q, now + ttl, id)
redis.call('PEXPIRE', q, ttl)
redis.call('PUBLISH', p .. 'control',
  '{"kind":"command","sessionId":' .. sidJson .. ',"command":' .. record .. '}')
return 1
