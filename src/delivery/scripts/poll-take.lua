-- RFC 8936 hand-out for one poll stream (all keys in the {o:<sid>} slot): first SETs handed out before and
-- not acknowledged within the redelivery time (XAUTOCLAIM), then new ones (XREADGROUP), lane by lane
-- (control, priority, normal). Work per call is bounded by `max`, never by how many are outstanding.
-- KEYS[1] control lane, KEYS[2] priority lane, KEYS[3] normal lane, KEYS[4] handed-out hash
-- (jti -> lane, entry id, subject key, txn, acknowledged-at, joined by \31)
-- ARGV[1] max SETs, ARGV[2] redelivery idle time (ms), ARGV[3] lanes to serve, in order (the caller's status policy decides: 'cpn' enabled, 'c' paused)
-- Returns {lane, entry id, fields...} per SET.
local lanes = { c = KEYS[1], p = KEYS[2], n = KEYS[3] }
local max = tonumber(ARGV[1])
local out = {}
local function group(key)
  redis.pcall('XGROUP', 'CREATE', key, 'poll', '0', 'MKSTREAM')
end
local function take(lane, entries)
  for _, e in ipairs(entries) do
    if e[2] then
      local f = e[2]
      local v = {}
      for k = 1, #f, 2 do v[f[k]] = f[k + 1] end
      redis.call('HSET', KEYS[4], v.j, table.concat({ lane, e[1], v.s or '', v.t or '', v.a or '' }, '\31'))
      table.insert(out, { lane, e[1], f })
    end
  end
end
for c in string.gmatch(ARGV[3], '.') do
  local key = lanes[c]
  if #out >= max then break end
  if redis.call('EXISTS', key) == 1 then
    local claimed = redis.pcall('XAUTOCLAIM', key, 'poll', 'pollers', ARGV[2], '0-0', 'COUNT', max - #out)
    if type(claimed) == 'table' and claimed.err then
      group(key)
      claimed = { '0-0', {} }
    end
    take(c, claimed[2])
    if #out < max then
      local fresh = redis.call('XREADGROUP', 'GROUP', 'poll', 'pollers', 'COUNT', max - #out, 'STREAMS', key, '>')
      if fresh and fresh[1] then take(c, fresh[1][2]) end
    end
  end
end
return out
