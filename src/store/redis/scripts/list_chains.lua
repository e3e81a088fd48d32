-- Chains' JSON, read in one step. ARGV: prefix, mode ("session", "active", "all"), sessionId.
-- A session's chains come in creation order, the others in order of last update. Index members
-- whose chain has expired are dropped on the way.
local p, mode, sid = ARGV[1], ARGV[2], ARGV[3]
local key, ids
if mode == 'session' then
  key = p .. 'chains:' .. sid
  ids = redis.call('LRANGE', key, 0, -1)
else
  key = p .. (mode == 'active' and 'index:chains:active' or 'index:chains')
  ids = redis.call('ZRANGE', key, 0, -1)
end
local out, seen = {}, {}
for _, id in ipairs(ids) do
  if not seen[id] then
    seen[id] = true
    local json = redis.call('HGET', p .. 'chain:' .. id, 'json')
    if json then
      out[#out + 1] = json
    elseif mode ~= 'session' then
      redis.call('ZREM', key, id)
    end
  end
end
return out
