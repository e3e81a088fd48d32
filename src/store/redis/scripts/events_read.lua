-- Reads a slice of a session's events and where its stream stands, in one consistent view.
-- KEYS: session, events.
-- ARGV: mode ('after' | 'tail'), n (the seq to read after, or how many newest events), limit,
-- maxBytes (the most bytes of events returned; always at least one event).
-- Returns {headSeq, epoch ('' when there is no stream), firstSeq, events}.
-- Events are read in chunks, so a page of large events stops near maxBytes without the whole
-- range ever being loaded.
local mode = ARGV[1]
local n, limit, maxBytes = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local meta = redis.call('HMGET', KEYS[1], '_seq', '_epoch')
if not meta[2] then
  return { 0, '', 1, {} }
end
local head = tonumber(meta[1])
local evKey = KEYS[2]
local len = redis.call('LLEN', evKey)
local first = head - len + 1
local events = {}
-- Where the slice starts (0-based index) and how many it may hold.
local start, count = 0, 0
if limit > 0 then
  if mode == 'after' then
    local from = n + 1
    if from < first then from = first end
    if from <= head then
      start = from - first
      count = math.min(limit, head - from + 1)
    end
  else
    count = math.min(n, limit, len)
    start = len - count
  end
end
local bytes, i = 0, 0
while i < count and (bytes < maxBytes or #events == 0) do
  local chunk = redis.call('LRANGE', evKey, start + i, start + math.min(i + 64, count) - 1)
  if #chunk == 0 then break end
  for _, e in ipairs(chunk) do
    if #events > 0 and bytes + #e > maxBytes then
      i = count
      break
    end
    events[#events + 1] = e
    bytes = bytes + #e
  end
  i = i + #chunk
end
return { head, meta[2], first, events }
