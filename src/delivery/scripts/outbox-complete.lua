-- Removes SETs that are done with (delivered, acknowledged, dead-lettered) from one stream's lanes and
-- records their outcomes (all keys in the {o:<sid>} slot).
-- KEYS[1] control lane, KEYS[2] priority lane, KEYS[3] normal lane, KEYS[4] pending hash,
-- KEYS[5] attempts hash, KEYS[6] delivery log list
-- ARGV[1] log entries kept, ARGV[2] number of SETs (k), ARGV[3] count what is left (1|0), then 4 per SET:
-- lane ('c'|'p'|'n'), entry id, subject key, jti; then the delivery-log records (JSON strings) to push
-- Returns {entries removed, SETs left in all lanes (-1 when not asked)}: with nothing left, the drain need
-- not read again.
local lanes = { c = KEYS[1], p = KEYS[2], n = KEYS[3] }
local k = tonumber(ARGV[2])
local removed = 0
local last = 3 + 4 * k
for i = 4, last, 4 do
  local lane = ARGV[i]
  local gone = redis.call('XDEL', lanes[lane], ARGV[i + 1])
  removed = removed + gone
  if gone == 1 and lane == 'n' then
    local left = redis.call('HINCRBY', KEYS[4], ARGV[i + 2], -1)
    if left <= 0 then redis.call('HDEL', KEYS[4], ARGV[i + 2]) end
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  for i = 4, last, 4 do redis.call('HDEL', KEYS[5], ARGV[i + 3]) end
end
-- Outcomes are recorded only while the stream has a lane: a stream deleted (all its keys removed) while
-- a push was in flight gets no delivery log back.
if #ARGV > last and redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3]) > 0 then
  redis.call('LPUSH', KEYS[6], unpack(ARGV, last + 1, #ARGV))
  redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[1]) - 1)
end
if ARGV[3] ~= '1' then return { removed, -1 } end
return { removed, redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2]) + redis.call('XLEN', KEYS[3]) }
