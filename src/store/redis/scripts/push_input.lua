-- Queues an input item. ARGV: prefix, sessionId, sessionId as JSON, inputId, item (JSON), ttlMs.
-- Each list element is "{expiresAtMs}:{inputId}:{item}" (Redis's clock), so every item expires
-- on its own; expired items at the head are dropped here, the others when read.
local p, sid, sidJson, id, item = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ttl = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local q = p .. 'input:' .. sid
while true do
  local head = redis.call('LINDEX', q, 0)
  if not head then break end
  local exp = tonumber(string.sub(head, 1, string.find(head, ':', 1, true) - 1))
  if exp > now then break end
  redis.call('LPOP', q)
end
redis.call('RPUSH', q, (now + ttl) .. ':' .. id .. ':' .. item)
redis.call('PEXPIRE', q, ttl)
redis.call('PUBLISH', p .. 'control',
  '{"kind":"wake","queue":"input","sessionId":' .. sidJson .. '}')
return 1
