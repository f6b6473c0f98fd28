-- Forgets acknowledged (or error-reported) SETs of one poll stream (all keys in the {o:<sid>} slot).
-- KEYS[1] control lane, KEYS[2] priority lane, KEYS[3] normal lane, KEYS[4] handed-out hash, KEYS[5] pending hash,
-- KEYS[6] delivery log list
-- ARGV[1] log entries kept, ARGV[2] number of jtis (k), then k jtis, then k delivery-log records (JSON,
-- one per jti; only those of released SETs are written)
-- Returns {jti, handed-out value} per SET released (unknown jtis are ignored).
local lanes = { c = KEYS[1], p = KEYS[2], n = KEYS[3] }
local k = tonumber(ARGV[2])
local done = {}
local logs = {}
for i = 3, 2 + k do
  local where = redis.call('HGET', KEYS[4], ARGV[i])
  if where then
    local parts = {}
    for part in string.gmatch(where .. '\31', '([^\31]*)\31') do table.insert(parts, part) end
    local lane, id, sk = parts[1], parts[2], parts[3] or ''
    redis.call('XACK', lanes[lane], 'poll', id)
    if redis.call('XDEL', lanes[lane], id) == 1 and lane == 'n' and sk ~= '' then
      if redis.call('HINCRBY', KEYS[5], sk, -1) <= 0 then redis.call('HDEL', KEYS[5], sk) end
    end
    redis.call('HDEL', KEYS[4], ARGV[i])
    table.insert(done, { ARGV[i], where })
    table.insert(logs, ARGV[i + k])
  end
end
if #logs > 0 then
  redis.call('LPUSH', KEYS[6], unpack(logs))
  redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[1]) - 1)
end
return done
