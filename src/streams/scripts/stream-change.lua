-- Changes one stream record, its indexes and the routing version atomically (all in the {streams} slot).
-- KEYS[1] records hash, KEYS[2] version counter, KEYS[3] change log stream, KEYS[4] activity zset,
-- KEYS[5] the client's stream set
-- ARGV[1] mode: 'create' (only if absent), 'update' (only if present), 'remove'
-- ARGV[2] stream id, ARGV[3] record JSON (create/update), ARGV[4] now (ms), ARGV[5] change log cap
-- Returns the new routing version, or 0 when the mode's condition did not hold (nothing written).
local mode, sid = ARGV[1], ARGV[2]
local exists = redis.call('HEXISTS', KEYS[1], sid) == 1
if (mode == 'create' and exists) or (mode ~= 'create' and not exists) then return 0 end
if mode == 'remove' then
  redis.call('HDEL', KEYS[1], sid)
  redis.call('ZREM', KEYS[4], sid)
  redis.call('SREM', KEYS[5], sid)
else
  redis.call('HSET', KEYS[1], sid, ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[4], sid)
  redis.call('SADD', KEYS[5], sid)
end
local v = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], v .. '-0', 'v', v, 'sid', sid)
return v
