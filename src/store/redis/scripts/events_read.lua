-- Reads a slice of a session's events and where its stream stands, in one consistent view.
-- KEYS: session, events.
-- ARGV: mode ('after' | 'tail'), n (the seq to read after, or how many newest events), limit.
-- Returns {headSeq, epoch ('' when there is no stream), firstSeq, events}.
local mode = ARGV[1]
local n, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local meta = redis.call('HMGET', KEYS[1], '_seq', '_epoch')
if not meta[2] then
  return { 0, '', 1, {} }
end
local head = tonumber(meta[1])
local evKey = KEYS[2]
local len = redis.call('LLEN', evKey)
local first = head - len + 1
local events = {}
if limit > 0 then
  if mode == 'after' then
    local from = n + 1
    if from < first then from = first end
    if from <= head then
      local start = from - first
      events = redis.call('LRANGE', evKey, start, start + limit - 1)
    end
  else
    local k = math.min(n, limit, len)
    if k > 0 then
      events = redis.call('LRANGE', evKey, -k, -1)
    end
  end
end
return { head, meta[2], first, events }
