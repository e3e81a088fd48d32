-- Acknowledges a command. ARGV: prefix, commandId, ack (JSON), expected sessionId ("": any).
-- Returns nil for an unknown or expired command or one of another session, else
-- {record, sessionId, first (1/0)}.
local p, id, ack, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ck = p .. 'command:' .. id
local h = redis.call('HMGET', ck, 'record', 'sessionId', 'status')
if not h[1] then return nil end
if expected ~= '' and h[2] ~= expected then return nil end
if h[3] == 'acknowledged' then return { h[1], h[2], 0 } end
redis.call('HSET', ck, 'status', 'acknowledged', 'ack', ack)
redis.call('ZREM', p .. 'commands:' .. h[2], id)
return { h[1], h[2], 1 }
