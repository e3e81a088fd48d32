-- Deletes a session with its events, chains and queues, drops it from the index, and tells
-- every instance on the control channel (in the same step, so no event of the old stream
-- can be published after the notice).
-- ARGV: prefix, sessionId, sessionIdAsJson. Returns 1 when the session existed, else 0.
local p, sid, sidJson = ARGV[1], ARGV[2], ARGV[3]
local sKey = p .. 'sessions:' .. sid
local existed = redis.call('EXISTS', sKey)
local idx = redis.call('HGET', sKey, '_idx')
if idx then
  redis.call('ZREM', p .. 'index:sessions', idx)
end
local chainsKey = p .. 'chains:' .. sid
for _, chainId in ipairs(redis.call('LRANGE', chainsKey, 0, -1)) do
  redis.call('DEL', p .. 'chain:' .. chainId)
end
redis.call('DEL', sKey, p .. 'events:' .. sid, chainsKey, p .. 'commands:' .. sid, p .. 'input:' .. sid)
if existed == 1 then
  redis.call('PUBLISH', p .. 'control', '{"kind":"session_deleted","sessionId":' .. sidJson .. '}')
end
return existed
