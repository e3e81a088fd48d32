-- The lock's holder, if it is held now (Redis's clock).
-- KEYS: lock (HASH owner, token, exp (ms), fence)
-- Returns {held (0|1), owner, token, fence, exp}.
local lock = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', lock, 'owner', 'token', 'exp', 'fence')
local exp = tonumber(cur[3]) or 0
local fence = tonumber(cur[4]) or 0
if cur[2] and exp > now then
  return {1, cur[1], cur[2], fence, exp}
end
return {0, '', '', fence, 0}
