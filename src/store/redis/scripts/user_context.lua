-- Reads, changes or deletes one user's context, by ARGV[1]: get, update, delete. A read of a
-- context that is not there answers the default and stores nothing (reads create no state);
-- the first write creates it. Every write renews the TTL of all three keys.
-- KEYS: context (HASH userId, tenantId, createdAt, updatedAt, `p:{name}` per preference
-- as JSON), searches (LIST, newest first), history (LIST of JSON, newest first)
-- ARGV: op, ttlMs, userId, tenantId, now (ISO), then for update: maxPreferences,
-- search ('' none), searchesLimit, history entry ('' none), historyLimit, n, then n pairs
-- of preference name and JSON ('' removes it).
-- Returns {HGETALL of the context, searches, history}, {} for a delete, or -1 when the
-- preferences would pass their limit (nothing changed).
local ctx, searches, history = KEYS[1], KEYS[2], KEYS[3]
local op, ttl = ARGV[1], tonumber(ARGV[2])

if op == 'delete' then
  return redis.call('DEL', ctx, searches, history)
end

local function renew()
  redis.call('PEXPIRE', ctx, ttl)
  redis.call('PEXPIRE', searches, ttl)
  redis.call('PEXPIRE', history, ttl)
end

if redis.call('EXISTS', ctx) == 0 then
  if op == 'get' then
    return {{'userId', ARGV[3], 'tenantId', ARGV[4], 'createdAt', ARGV[5], 'updatedAt', ARGV[5]}, {}, {}}
  end
  redis.call('HSET', ctx, 'userId', ARGV[3], 'tenantId', ARGV[4], 'createdAt', ARGV[5], 'updatedAt', ARGV[5])
  renew()
end

if op == 'update' then
  local n = tonumber(ARGV[11])
  local count = redis.call('HLEN', ctx) - 4
  for i = 0, n - 1 do
    local name, value = 'p:' .. ARGV[12 + 2 * i], ARGV[13 + 2 * i]
    local has = redis.call('HEXISTS', ctx, name) == 1
    if value == '' and has then count = count - 1 end
    if value ~= '' and not has then count = count + 1 end
  end
  if count > tonumber(ARGV[6]) then return -1 end
  for i = 0, n - 1 do
    local name, value = 'p:' .. ARGV[12 + 2 * i], ARGV[13 + 2 * i]
    if value == '' then redis.call('HDEL', ctx, name) else redis.call('HSET', ctx, name, value) end
  end
  if ARGV[7] ~= '' then
    redis.call('LREM', searches, 0, ARGV[7])
    redis.call('LPUSH', searches, ARGV[7])
    redis.call('LTRIM', searches, 0, tonumber(ARGV[8]) - 1)
  end
  if ARGV[9] ~= '' then
    redis.call('LPUSH', history, ARGV[9])
    redis.call('LTRIM', history, 0, tonumber(ARGV[10]) - 1)
  end
  redis.call('HSET', ctx, 'updatedAt', ARGV[5])
  renew()
end

return {redis.call('HGETALL', ctx), redis.call('LRANGE', searches, 0, -1), redis.call('LRANGE', history, 0, -1)}
