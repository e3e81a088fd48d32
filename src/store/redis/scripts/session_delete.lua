-- Deletes a session with its events, input and chains, drops it and its chains from the
-- indexes, and tells every instance on the control channel (in the same step, so no event of
-- the old stream can be published after the notice). Its commands stop being pending but
-- stay until they expire, so a late acknowledgement still finds its command.
-- KEYS: session, events, chain list, commands, command items, input, input items,
--       session index, chain index, active chain index, chain stats, chain meta (both as in
--       `chains.lua`), then each chain's HASH, then each chain's owner key.
-- ARGV: control channel, notice, n (the chains the caller read), n chain ids, n index members.
-- Returns 1 when the session existed, 0 when it did not, -1 when the session's chains are not
-- the n given (one was created meanwhile): read them again and retry.
local sKey, chainList = KEYS[1], KEYS[3]
local channel, notice, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids = redis.call('LRANGE', chainList, 0, -1)
if #ids ~= n then return -1 end
for i = 1, n do
  if ids[i] ~= ARGV[3 + i] then return -1 end
end
local existed = redis.call('EXISTS', sKey)
local idx = redis.call('HGET', sKey, '_idx')
if idx then
  redis.call('ZREM', KEYS[8], idx)
end
-- The chains leave the indexes and the counters (as `forget` in `chains.lua`).
for i = 1, n do
  local member = ARGV[3 + n + i]
  local was = redis.call('HGET', KEYS[12], member)
  if was then
    local status, progress = string.match(was, '^(.*)|(%-?%d+)$')
    redis.call('HINCRBY', KEYS[11], 'n:' .. status, -1)
    redis.call('HINCRBY', KEYS[11], 'p:' .. status, 0 - tonumber(progress))
    redis.call('HDEL', KEYS[12], member)
  end
  redis.call('ZREM', KEYS[9], member)
  redis.call('ZREM', KEYS[10], member)
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  redis.call('HSET', KEYS[5], 't:' .. id, '1')
end
redis.call('DEL', sKey, KEYS[2], chainList, KEYS[6], KEYS[7])
for i = 13, #KEYS do
  redis.call('DEL', KEYS[i])
end
if existed == 1 then
  redis.call('PUBLISH', channel, notice)
end
return existed
