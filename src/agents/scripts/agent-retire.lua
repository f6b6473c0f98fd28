-- Retires one active agent: status retired, off the expiry sweep, queued for notification, record kept
-- for the retention; its edge from the delegator goes once nothing is below it ({agents} slot).
-- KEYS[1] the agent's record hash, KEYS[2] expiry zset, KEYS[3] notification zset
-- ARGV[1] agent id, ARGV[2] now (s), ARGV[3] reason, ARGV[4] record TTL (s), ARGV[5] edge key prefix,
-- ARGV[6] when the notification is due again if not confirmed (ms)
-- Returns {0} no such agent, {1, fields} already retired, {2, fields} retired by this call.
local r = redis.call('HMGET', KEYS[1], 'status', 'parent')
if not r[1] then return {0} end
if r[1] ~= 'active' then return {1, redis.call('HGETALL', KEYS[1])} end
redis.call('HSET', KEYS[1], 'status', 'retired', 'retired_at', ARGV[2], 'retired_reason', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('SCARD', ARGV[5] .. ARGV[1]) == 0 then redis.call('SREM', ARGV[5] .. r[2], ARGV[1]) end
return {2, redis.call('HGETALL', KEYS[1])}
