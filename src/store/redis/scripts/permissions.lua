-- Permission requests: open one, or settle one (the first settlement wins).
-- KEYS: the request (HASH request, status, decision, exp), the index of requests kept (ZSET
--   id by deadline), the index of pending ones (ZSET id by deadline)
-- ARGV[1] 'open':   id, request JSON, deadline (ms), keep (ms), most pending, most kept
--   Returns {1, request, 'pending', '', exp, ids dropped from the index...} when opened,
--   {0, request, status, decision, exp} when it existed, {-1} when too many are pending.
-- ARGV[1] 'settle': id, status, decision JSON, control channel, wake-up message
--   Returns {1, ...} when this settled it, {0, ...} as it stands when it was settled (or is
--   past its deadline: only 'expired' and 'abandoned' settle it then), nil when unknown.
local req, all, pending = KEYS[1], KEYS[2], KEYS[3]
local op, id = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function reply(won)
  local r = redis.call('HMGET', req, 'request', 'status', 'decision', 'exp')
  return {won, r[1], r[2], r[3] or '', r[4]}
end

if op == 'open' then
  if redis.call('EXISTS', req) == 1 then
    return reply(0)
  end
  local exp, keep = tonumber(ARGV[4]), tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', pending, '-inf', now)
  if redis.call('ZCARD', pending) >= tonumber(ARGV[6]) then
    return {-1}
  end
  redis.call('ZREMRANGEBYSCORE', all, '-inf', now - keep)
  redis.call('HSET', req, 'request', ARGV[3], 'status', 'pending', 'exp', exp)
  redis.call('PEXPIREAT', req, exp + keep)
  redis.call('ZADD', all, exp, id)
  redis.call('ZADD', pending, exp, id)
  local out = {1, ARGV[3], 'pending', '', exp}
  local over = redis.call('ZCARD', all) - tonumber(ARGV[7])
  if over > 0 then
    for _, gone in ipairs(redis.call('ZRANGE', all, 0, over - 1)) do
      redis.call('ZREM', pending, gone)
      out[#out + 1] = gone
    end
    redis.call('ZREMRANGEBYRANK', all, 0, over - 1)
  end
  return out
end

-- settle
if redis.call('EXISTS', req) == 0 then
  return nil
end
local cur = redis.call('HMGET', req, 'status', 'exp')
local status = ARGV[3]
local late = (tonumber(cur[2]) or 0) <= now and status ~= 'expired' and status ~= 'abandoned'
if cur[1] ~= 'pending' or late then
  return reply(0)
end
redis.call('HSET', req, 'status', status, 'decision', ARGV[4])
redis.call('ZREM', pending, id)
redis.call('PUBLISH', ARGV[5], ARGV[6])
return reply(1)
