-- Appends SETs to one stream's lanes and keeps its backlog within bound (all keys in the {o:<sid>} slot).
-- KEYS[1] control lane, KEYS[2] priority lane, KEYS[3] normal lane, KEYS[4] pending hash
-- (subjectKey -> queued normal SETs; field '#n' is the stream's order counter), KEYS[5] dropped hash,
-- KEYS[6] attempts hash, KEYS[7] failing-since marker
-- ARGV[1] backlog bound (normal + priority lanes), ARGV[2] now (ms), ARGV[3] count pending (1|0),
-- then 8 per SET: lane ('c'|'p'|'n'), jti, subject key, txn, type, acknowledged-at (ms), SET, routing version
-- it was minted under ('' if unknown)
-- Returns {dropped, lanes were empty before (1|0), stream has failed pushes (1|0), order number of the
-- first SET, SETs the lanes hold after the append, entry id of each SET..., jti...} (jtis of the first 100
-- dropped, oldest first). The first four let the process that claims the stream deliver these SETs
-- without reading them back; the fifth tells the fan-out how far behind the stream is.
local lanes = { c = KEYS[1], p = KEYS[2], n = KEYS[3] }
local count = (#ARGV - 3) / 8
-- Lane lengths before the append (XLEN, not EXISTS: a lane whose entries were all removed stays as an
-- empty key); kept up to date below, so the backlog check needs no second read.
local len = { c = redis.call('XLEN', KEYS[1]), p = redis.call('XLEN', KEYS[2]), n = redis.call('XLEN', KEYS[3]) }
local empty = 0
if len.c + len.p + len.n == 0 then empty = 1 end
local failing = 0
if redis.call('EXISTS', KEYS[6], KEYS[7]) > 0 then failing = 1 end
local n = redis.call('HINCRBY', KEYS[4], '#n', count) - count
local out = { 0, empty, failing, n + 1, 0 }
for i = 4, #ARGV, 8 do
  n = n + 1
  local lane = ARGV[i]
  len[lane] = len[lane] + 1
  table.insert(out, redis.call('XADD', lanes[lane], '*', 'j', ARGV[i + 1], 's', ARGV[i + 2], 't', ARGV[i + 3], 'y', ARGV[i + 4], 'a', ARGV[i + 5], 'n', n, 'v', ARGV[i + 7], 'd', ARGV[i + 6]))
  if lane == 'n' and ARGV[3] == '1' then redis.call('HINCRBY', KEYS[4], ARGV[i + 2], 1) end
end
-- Beyond the bound the oldest SETs go, normal lane first (a revocation outlives informational events).
local over = len.n + len.p - tonumber(ARGV[1])
out[5] = len.c + len.n + len.p - math.max(over, 0)
if over <= 0 then return out end
for _, key in ipairs({ KEYS[3], KEYS[2] }) do
  if over <= 0 then break end
  local old = redis.call('XRANGE', key, '-', '+', 'COUNT', over)
  for _, e in ipairs(old) do
    local f = e[2]
    local jti, sk
    for k = 1, #f, 2 do
      if f[k] == 'j' then jti = f[k + 1] elseif f[k] == 's' then sk = f[k + 1] end
    end
    redis.call('XDEL', key, e[1])
    if key == KEYS[3] and ARGV[3] == '1' and sk then
      if redis.call('HINCRBY', KEYS[4], sk, -1) <= 0 then redis.call('HDEL', KEYS[4], sk) end
    end
    out[1] = out[1] + 1
    if out[1] <= 100 then table.insert(out, jti) end
  end
  over = over - #old
end
redis.call('HINCRBY', KEYS[5], 'count', out[1])
redis.call('HSET', KEYS[5], 'last_at', ARGV[2])
return out
