-- The session's queued input, oldest first. ARGV: prefix, sessionId, consume ("1"/"0").
-- With consume the whole queue is taken in this same step: every item is returned, none is
-- dropped, and no other poller gets it.
local p, sid, consume = ARGV[1], ARGV[2], ARGV[3] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local q = p .. 'input:' .. sid
local items = redis.call('LRANGE', q, 0, -1)
if consume then redis.call('DEL', q) end
local out = {}
for _, it in ipairs(items) do
  local c1 = string.find(it, ':', 1, true)
  local c2 = string.find(it, ':', c1 + 1, true)
  if tonumber(string.sub(it, 1, c1 - 1)) > now then
    out[#out + 1] = string.sub(it, c2 + 1)
  end
end
return out
