-- Changes one stream record, its indexes and the routing version atomically (all in the {streams} slot).
-- KEYS[1] records hash, KEYS[2] version counter, KEYS[3] change log stream, KEYS[4] activity zset,
-- KEYS[5] the client's stream set
-- ARGV[1] mode: 'create' (only if absent, and only while the client holds fewer than ARGV[6] streams),
-- 'update' (only if the stored record is still exactly ARGV[6], the one the change was made from),
-- 'remove' (only if present), 'touch' (record activity, only if present; the version does not move)
-- ARGV[2] stream id, ARGV[3] record JSON (create/update), ARGV[4] now (ms), ARGV[5] change log cap,
-- ARGV[6] create: the client's stream limit; update: the record JSON the change was made from
-- Returns the new routing version (touch: 1); 0 when the stream is absent (create: present), -1 when the
-- client's limit is reached, -2 when the record changed since it was read (nothing is written then).
local mode, sid = ARGV[1], ARGV[2]
local current = redis.call('HGET', KEYS[1], sid)
if mode == 'create' then
  if current then return 0 end
  if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[6]) then return -1 end
elseif not current then
  return 0
end
if mode == 'touch' then
  redis.call('ZADD', KEYS[4], ARGV[4], sid)
  return 1
end
if mode == 'update' and current ~= ARGV[6] then return -2 end
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
