-- Every step of one job queue, by ARGV[1]: enqueue, claim, complete, fail, extend, get,
-- stats, dead, retry_dead, tidy. One script so that each step first does the same upkeep (due
-- delayed jobs and due retries become waiting, expired leases go back with their attempt
-- counted or to the dead letters, finished jobs past their keep time are removed), all
-- against Redis's clock and all in the queue's one slot. The rules it keeps are those of
-- `store/jobs.rs`, step for step as the memory store's `job_queue.rs`.
-- KEYS: jobs (HASH: per job id `j:` its fixed JSON, `s:` state, `a:` attempts, `m:` max
-- attempts, `b:` backoff (`e|f:delay:cap`), `o:` order score, `c:` created ms, `e:` errors
-- (JSON array), `el:` the byte length of each of those errors (comma-separated, oldest
-- first), `r:` result, `t:` lease token, `w:` worker; `#seq` the enqueue counter, `#due` the
-- upkeep's gate, below),
-- waiting (ZSET by order), delayed, retry, active, completed, dead (ZSETs by time, ms).
-- ARGV: op, ttlMs (every key's expiry, renewed by each step), keepMs, historyMax (finished
-- jobs kept, completed and dead each), errorsMax and errorsBytes (errors one job keeps),
-- readMax (bytes of jobs one answer carries beyond its first), then the op's own (`arg(i)`).
local jobs, waiting, delayed, retry, active, completed, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local op, ttl, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local historyMax, errorsMax, errorsBytes = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local readMax = tonumber(ARGV[7])
local function arg(i) return ARGV[7 + i] end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function num(x) return string.format('%.0f', x) end
-- At most this many jobs of each kind per step's upkeep (the rest on the next one).
local UPKEEP = 1000

-- Keeps the job's newest errors within errorsMax and errorsBytes (the newest always stays).
-- `el:` holds each kept error's length, so the oldest can be cut from the text without
-- decoding it (cjson would rewrite the errors' numbers). Errors written before `el:` existed
-- count as one.
local function add_error(id, text)
  local f = redis.call('HMGET', jobs, 'e:' .. id, 'el:' .. id, 'a:' .. id)
  local errs, attempt = f[1] or '[]', f[3] or '0'
  local e = '{"attempt":' .. attempt .. ',"error":' .. text .. ',"at":' .. num(now) .. '}'
  local lens = {}
  if f[2] and f[2] ~= '' then
    for n in string.gmatch(f[2], '%d+') do lens[#lens + 1] = tonumber(n) end
  elseif errs ~= '[]' then
    lens[1] = #errs - 2
  end
  local inner = string.sub(errs, 2, -2)
  if inner == '' then inner = e else inner = inner .. ',' .. e end
  lens[#lens + 1] = #e
  local first = 1
  while #lens - first + 1 > 1 and (#lens - first + 1 > errorsMax or #inner + 2 > errorsBytes) do
    inner = string.sub(inner, lens[first] + 2)
    first = first + 1
  end
  local kept = {}
  for i = first, #lens do kept[#kept + 1] = lens[i] end
  redis.call('HSET', jobs, 'e:' .. id, '[' .. inner .. ']', 'el:' .. id, table.concat(kept, ','))
end

local function to_waiting(ids)
  for _, id in ipairs(ids) do
    redis.call('ZADD', waiting, redis.call('HGET', jobs, 'o:' .. id), id)
    redis.call('HSET', jobs, 's:' .. id, 'waiting')
  end
end

-- The upkeep's gate: a time (ms) before which it has nothing to do, kept in the jobs hash as
-- `#due` (absent: unknown, so it runs). Every step that files a job under a time lowers it to
-- that time: due (delayed, retry), lease expiry (active: claims and extensions alike), or
-- finish + keep + SLACK (completed, dead). SLACK lets a busy queue's removals run once in a
-- while, in batches, instead of at every step: finished jobs go between `keep` and
-- `keep + SLACK` after they finished.
local SLACK = math.min(math.floor(keep / 10), 60000)
local gate = tonumber(redis.call('HGET', jobs, '#due') or '0')
local function lower(t)
  if t < gate then
    gate = t
    redis.call('HSET', jobs, '#due', num(t))
  end
end

local function forget(ids)
  for _, id in ipairs(ids) do
    redis.call('HDEL', jobs, 'j:' .. id, 's:' .. id, 'a:' .. id, 'm:' .. id, 'b:' .. id,
      'o:' .. id, 'c:' .. id, 'e:' .. id, 'el:' .. id, 'r:' .. id, 't:' .. id, 'w:' .. id)
  end
end

-- Finished history is bounded on its own: past historyMax the oldest go first (at most
-- UPKEEP per step, so a lowered setting takes effect over a few steps).
local function over(n) return math.min(n - historyMax, UPKEEP) end
local function trim_completed()
  local n = over(redis.call('ZCARD', completed))
  if n > 0 then
    local old = redis.call('ZRANGE', completed, 0, n - 1)
    redis.call('ZREM', completed, unpack(old))
    forget(old)
  end
end
local function trim_dead()
  local n = over(redis.call('ZCARD', dead))
  if n > 0 then
    local old = redis.call('ZRANGE', dead, 0, n - 1)
    redis.call('ZREM', dead, unpack(old))
    forget(old)
  end
end

local function bury(id)
  lower(now + keep + SLACK)
  redis.call('ZADD', dead, num(now), id)
  redis.call('HSET', jobs, 's:' .. id, 'dead')
  redis.call('HDEL', jobs, 't:' .. id, 'w:' .. id)
  trim_dead()
end

-- Upkeep, at most UPKEEP jobs of each kind; then the gate moves to the next time it has
-- work (or far ahead).
local upkept = false
local function upkeep()
  upkept = true
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, UPKEEP)
  if #due > 0 then redis.call('ZREM', delayed, unpack(due)); to_waiting(due) end
  due = redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, UPKEEP)
  if #due > 0 then redis.call('ZREM', retry, unpack(due)); to_waiting(due) end
  local lapsed = redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, UPKEEP)
  if #lapsed > 0 then
    redis.call('ZREM', active, unpack(lapsed))
    for _, id in ipairs(lapsed) do
      local worker = redis.call('HGET', jobs, 'w:' .. id) or ''
      add_error(id, cjson.encode('lease expired (worker ' .. worker .. ')'))
      if tonumber(redis.call('HGET', jobs, 'a:' .. id)) >= tonumber(redis.call('HGET', jobs, 'm:' .. id)) then
        bury(id)
      else
        redis.call('HDEL', jobs, 't:' .. id, 'w:' .. id)
        to_waiting({id})
      end
    end
  end
  local old = redis.call('ZRANGEBYSCORE', completed, '-inf', now - keep, 'LIMIT', 0, UPKEEP)
  if #old > 0 then redis.call('ZREM', completed, unpack(old)); forget(old) end
  old = redis.call('ZRANGEBYSCORE', dead, '-inf', now - keep, 'LIMIT', 0, UPKEEP)
  if #old > 0 then redis.call('ZREM', dead, unpack(old)); forget(old) end
  local soonest = 9007199254740991
  local function consider(first, plus)
    if first[2] then soonest = math.min(soonest, tonumber(first[2]) + plus) end
  end
  consider(redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES'), 0)
  consider(redis.call('ZRANGE', retry, 0, 0, 'WITHSCORES'), 0)
  consider(redis.call('ZRANGE', active, 0, 0, 'WITHSCORES'), 0)
  consider(redis.call('ZRANGE', completed, 0, 0, 'WITHSCORES'), keep + SLACK)
  consider(redis.call('ZRANGE', dead, 0, 0, 'WITHSCORES'), keep + SLACK)
  gate = soonest
  -- Only into a hash that is there (and so has its expiry): an empty queue keeps no gate.
  if redis.call('EXISTS', jobs) == 1 then redis.call('HSET', jobs, '#due', num(soonest)) end
end
-- (`tidy` runs it only when it removes, so that a dry run changes nothing.)
if now >= gate and op ~= 'tidy' then upkeep() end

local function expire_all()
  redis.call('PEXPIRE', jobs, ttl)
  redis.call('PEXPIRE', waiting, ttl)
  redis.call('PEXPIRE', delayed, ttl)
  redis.call('PEXPIRE', retry, ttl)
  redis.call('PEXPIRE', active, ttl)
  redis.call('PEXPIRE', completed, ttl)
  redis.call('PEXPIRE', dead, ttl)
end

-- A job as the gateway reads it: {id, fixed JSON, state, attempts, max, created, at, worker,
-- token, errors, result}; `at` is its time in its state's ZSET (0 while waiting), read from
-- there unless the caller knows it (`known_at`).
local function view(id, known_at)
  local f = redis.call('HMGET', jobs, 'j:' .. id, 's:' .. id, 'a:' .. id, 'm:' .. id,
    'c:' .. id, 'w:' .. id, 't:' .. id, 'e:' .. id, 'r:' .. id)
  if not f[1] then return false end
  local at = known_at
  local state = f[2]
  if at then
  elseif state == 'delayed' then at = redis.call('ZSCORE', delayed, id)
  elseif state == 'failed' then at = redis.call('ZSCORE', retry, id)
  elseif state == 'active' then at = redis.call('ZSCORE', active, id)
  elseif state == 'completed' then at = redis.call('ZSCORE', completed, id)
  elseif state == 'dead' then at = redis.call('ZSCORE', dead, id) end
  return {id, f[1], state, f[3], f[4], f[5], at or '0', f[6] or '', f[7] or '', f[8] or '[]', f[9] or ''}
end

-- What an answer carrying this job writes of it, about (the readMax bound).
local function answer_bytes(v)
  return #v[2] + #v[10] + #v[11]
end

-- The earliest time something may become claimable (0: nothing pending).
local function next_due()
  local best = 0
  for _, z in ipairs({redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES'),
                      redis.call('ZRANGE', retry, 0, 0, 'WITHSCORES'),
                      redis.call('ZRANGE', active, 0, 0, 'WITHSCORES')}) do
    if z[2] and (best == 0 or tonumber(z[2]) < best) then best = tonumber(z[2]) end
  end
  return best
end

-- The lease holder's check: the job is active and the token (or, without one, the worker)
-- is the current lease's. Returns 1 and the lease's worker if so, 0 if someone else's or no
-- lease, -1 unknown job.
local function holds(id, token, worker)
  local f = redis.call('HMGET', jobs, 'j:' .. id, 's:' .. id, 't:' .. id, 'w:' .. id)
  if not f[1] then return -1 end
  if f[2] ~= 'active' then return 0 end
  if token ~= '' and f[3] ~= token then return 0 end
  if worker ~= '' and f[4] ~= worker then return 0 end
  return 1, f[4] or ''
end

-- Takes up to `max` waiting jobs under one lease, stopping once they reach readMax bytes (at
-- least one): {ms until something may be claimable (only when none was taken; -1: nothing
-- pending), jobs, still waiting}. A claim that finds nothing claimable while something is
-- already due runs the upkeep it skipped first, so it never answers "due now" without having
-- done the work. The caller renews the keys when it took some.
local function claim(worker, max, lease_ms, token)
  local ids = redis.call('ZRANGE', waiting, 0, max - 1)
  if #ids == 0 and not upkept then
    local due = next_due()
    if due > 0 and due <= now then
      upkeep()
      ids = redis.call('ZRANGE', waiting, 0, max - 1)
    end
  end
  local out = {}
  if #ids == 0 then
    local due = next_due()
    if due == 0 then return {'-1', out, 0} end
    return {num(math.max(due - now, 0)), out, 0}
  end
  local until_ms = num(now + lease_ms)
  lower(now + lease_ms)
  local taken, bytes = {}, 0
  for _, id in ipairs(ids) do
    redis.call('HINCRBY', jobs, 'a:' .. id, 1)
    redis.call('HSET', jobs, 's:' .. id, 'active', 't:' .. id, token, 'w:' .. id, worker)
    redis.call('ZADD', active, until_ms, id)
    local v = view(id, until_ms)
    out[#out + 1] = v
    taken[#taken + 1] = id
    bytes = bytes + answer_bytes(v)
    if bytes >= readMax then break end
  end
  redis.call('ZREM', waiting, unpack(taken))
  return {'-1', out, redis.call('ZCARD', waiting)}
end

if op == 'enqueue' then
  -- arg: maxJobs, channel, wake-up message, then per job: id, fixed JSON, priority offset
  -- (0 highest), delayMs, maxAttempts, backoff. All or none: the new ones must fit among the
  -- pending jobs (finished ones do not count).
  local fresh, n = {}, 0
  for i = 11, #ARGV, 6 do
    local id = ARGV[i]
    if not fresh[id] and redis.call('HEXISTS', jobs, 'j:' .. id) == 0 then
      fresh[id] = true
      n = n + 1
    end
  end
  if n > 0 then
    local pending = redis.call('ZCARD', waiting) + redis.call('ZCARD', delayed) +
      redis.call('ZCARD', retry) + redis.call('ZCARD', active)
    if pending + n > tonumber(arg(1)) then return {-1} end
  end
  local out, claimable = {}, false
  for i = 11, #ARGV, 6 do
    local id = ARGV[i]
    if redis.call('HEXISTS', jobs, 'j:' .. id) == 1 then
      out[#out + 1] = {0, view(id)}
    else
      local seq = redis.call('HINCRBY', jobs, '#seq', 1)
      local order = tonumber(ARGV[i + 2]) * 1099511627776 + seq
      local delay = tonumber(ARGV[i + 3])
      redis.call('HSET', jobs, 'j:' .. id, ARGV[i + 1], 'a:' .. id, '0', 'm:' .. id, ARGV[i + 4],
        'b:' .. id, ARGV[i + 5], 'o:' .. id, num(order), 'c:' .. id, num(now), 'e:' .. id, '[]')
      if delay > 0 then
        lower(now + delay)
        redis.call('ZADD', delayed, num(now + delay), id)
        redis.call('HSET', jobs, 's:' .. id, 'delayed')
      else
        to_waiting({id})
        claimable = true
      end
      out[#out + 1] = {1, view(id)}
    end
  end
  if claimable then redis.call('PUBLISH', arg(2), arg(3)) end
  if n > 0 then expire_all() end
  return {1, out}
elseif op == 'claim' then
  -- arg: worker, max, leaseMs, token
  local c = claim(arg(1), tonumber(arg(2)), tonumber(arg(3)), arg(4))
  if #c[2] > 0 then expire_all() end
  return c
elseif op == 'complete' or op == 'fail' or op == 'extend' then
  -- arg: id, token, worker, then complete: result, and the next claim's worker ('' for the
  -- lease's), max, leaseMs and token (absent: no next claim); fail: error JSON, retry (1|0),
  -- jitter (0-1); extend: leaseMs
  local id = arg(1)
  local h, leaseWorker = holds(id, arg(2), arg(3))
  if h ~= 1 then return {h} end
  if op == 'extend' then
    -- A lease ends when its latest extension says, sooner or later than before: the gate
    -- follows it down, or a shortened lease would lapse only at its old end.
    local until_ms = now + tonumber(arg(4))
    redis.call('ZADD', active, 'XX', num(until_ms), id)
    lower(until_ms)
  else
    redis.call('ZREM', active, id)
    redis.call('HDEL', jobs, 't:' .. id, 'w:' .. id)
    if op == 'complete' then
      lower(now + keep + SLACK)
      redis.call('ZADD', completed, num(now), id)
      if arg(4) ~= '' then
        redis.call('HSET', jobs, 's:' .. id, 'completed', 'r:' .. id, arg(4))
      else
        redis.call('HSET', jobs, 's:' .. id, 'completed')
      end
    else
      add_error(id, arg(4))
      local attempts = tonumber(redis.call('HGET', jobs, 'a:' .. id))
      local max = tonumber(redis.call('HGET', jobs, 'm:' .. id))
      if arg(5) == '1' and attempts < max then
        local kind, base, cap = string.match(redis.call('HGET', jobs, 'b:' .. id), '^(%a):(%d+):(%d+)$')
        local delay = tonumber(base)
        if kind == 'e' then delay = delay * math.pow(2, attempts - 1) end
        delay = math.min(delay, tonumber(cap))
        delay = math.floor(delay / 2 + tonumber(arg(6)) * delay / 2)
        lower(now + delay)
        redis.call('ZADD', retry, num(now + delay), id)
        redis.call('HSET', jobs, 's:' .. id, 'failed')
      else
        bury(id)
      end
    end
  end
  local settled = view(id, op == 'complete' and num(now) or nil)
  local reply = {1, settled}
  if op == 'complete' then
    -- After the view: the completed job may be the oldest kept, and go at once.
    trim_completed()
    if arg(5) then
      local worker = arg(5)
      if worker == '' then worker = leaseWorker end
      local c = claim(worker, tonumber(arg(6)), tonumber(arg(7)), arg(8))
      reply = {1, settled, c[1], c[2], c[3], worker}
    end
  end
  -- After the claim: a key it made again (the last active job just left) gets its expiry.
  expire_all()
  return reply
elseif op == 'get' then
  return {view(arg(1))}
elseif op == 'stats' then
  return {redis.call('ZCARD', waiting), redis.call('ZCARD', delayed), redis.call('ZCARD', active),
    redis.call('ZCARD', completed), redis.call('ZCARD', retry), redis.call('ZCARD', dead)}
elseif op == 'tidy' then
  -- `afw-gateway cleanup`: the finished jobs past their keep time (completed and dead), only
  -- counted when arg 1 is '1', else removed by the upkeep (at most UPKEEP of each kind; the
  -- caller calls again until none is left). Returns how many were counted or removed.
  local c = redis.call('ZCOUNT', completed, '-inf', now - keep)
  local d = redis.call('ZCOUNT', dead, '-inf', now - keep)
  if arg(1) == '1' then return c + d end
  if c + d > 0 then upkeep() end
  return math.min(c, UPKEEP) + math.min(d, UPKEEP)
elseif op == 'dead' then
  -- arg: limit, cursor's ms and member ('' from the newest). Newest first (ties of one ms in
  -- descending member order), at most `limit`, stopping once the jobs reach readMax bytes:
  -- {jobs, next cursor's ms and member, or nothing when the walk reached the end}.
  local limit, cms, cmember = tonumber(arg(1)), arg(2), arg(3)
  local max = '+inf'
  if cms ~= '' then max = cms end
  local out, bytes, offset, last, more = {}, 0, 0, nil, false
  while not more do
    local got = redis.call('ZREVRANGEBYSCORE', dead, max, '-inf', 'WITHSCORES', 'LIMIT', offset, 100)
    if #got == 0 then break end
    offset = offset + #got / 2
    for i = 1, #got, 2 do
      local id, score = got[i], got[i + 1]
      if not (cms ~= '' and tonumber(score) == tonumber(cms) and id >= cmember) then
        if #out >= limit or bytes >= readMax then more = true; break end
        local v = view(id, score)
        if v then
          out[#out + 1] = v
          bytes = bytes + answer_bytes(v)
          last = {score, id}
        end
      end
    end
  end
  if more and last then return {out, last[1], last[2]} end
  return {out}
elseif op == 'retry_dead' then
  -- arg: id, channel, wake-up message. Back to waiting with its attempts reset.
  local id = arg(1)
  if redis.call('ZREM', dead, id) == 0 then return {0} end
  redis.call('HSET', jobs, 'a:' .. id, '0')
  to_waiting({id})
  redis.call('PUBLISH', arg(2), arg(3))
  expire_all()
  return {1, view(id)}
end
return redis.error_reply('unknown jobs op ' .. op)
