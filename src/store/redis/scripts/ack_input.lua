-- Removes one queued input item. ARGV: prefix, sessionId, inputId. Returns 1 if it was queued
-- and not expired, else 0.
local p, sid, id = ARGV[1], ARGV[2], ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local q = p .. 'input:' .. sid
for _, it in ipairs(redis.call('LRANGE', q, 0, -1)) do
  local c1 = string.find(it, ':', 1, true)
  local c2 = string.find(it, ':', c1 + 1, true)
  if string.sub(it, c1 + 1, c2 - 1) == id then
    redis.call('LREM', q, 1, it)
    return tonumber(string.sub(it, 1, c1 - 1)) > now and 1 or 0
  end
end
return 0
