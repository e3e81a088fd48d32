-- Requests from a subject's GCRA budget, by Redis's own clock (domain/rate.rs says why).
-- KEYS: tat (STRING: the subject's TAT, microseconds of Redis's clock)
-- ARGV: interval_us, tolerance_us, count (requests taken at once, all or none).
-- Returns {allowed (1/0), remaining, retry_after_us, reset_us}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local key = KEYS[1]
local tat = tonumber(redis.call('GET', key) or now)
if tat < now then tat = now end
local nxt = tat + interval * tonumber(ARGV[3])
local ahead = nxt - now
if ahead > tolerance then
  return {0, 0, ahead - tolerance, tat - now}
end
redis.call('SET', key, string.format('%.0f', nxt), 'PX', math.floor(ahead / 1000) + 1)
return {1, math.floor((tolerance - ahead) / interval), 0, ahead}
