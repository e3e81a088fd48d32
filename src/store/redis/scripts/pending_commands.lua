-- The session's pending commands, oldest first. ARGV: prefix, sessionId, consume ("1"/"0").
-- With consume, what is returned leaves the pending set in this same step, so two pollers
-- never take the same command; the command's HASH stays until it expires, for its ack.
local p, sid, consume = ARGV[1], ARGV[2], ARGV[3] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local q = p .. 'commands:' .. sid
redis.call('ZREMRANGEBYSCORE', q, '-inf', now)
local ids = redis.call('ZRANGE', q, 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local record = redis.call('HGET', p .. 'command:' .. id, 'record')
  if record then
    out[#out + 1] = record
    if consume then redis.call('ZREM', q, id) end
  else
    redis.call('ZREM', q, id)
  end
end
return out
