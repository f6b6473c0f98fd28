-- Gives a stream's lease back ({sched:<k>} slot).
-- KEYS[1] ready zset, KEYS[2] lease hash, KEYS[3] dirty set
-- ARGV[1] sid, ARGV[2] owner, ARGV[3] mode: 'idle' (nothing deliverable seen), 'backoff' (due again at
-- ARGV[4] ms), 'drop' (no longer a push stream)
-- Returns 0 not the holder, 1 released, 2 (idle) SETs came meanwhile: keep draining.
local sid = ARGV[1]
if redis.call('HGET', KEYS[2], sid) ~= ARGV[2] then return 0 end
if ARGV[3] == 'idle' and redis.call('SREM', KEYS[3], sid) == 1 then return 2 end
redis.call('HDEL', KEYS[2], sid)
redis.call('SREM', KEYS[3], sid)
if ARGV[3] == 'backoff' then
  redis.call('ZADD', KEYS[1], ARGV[4], sid)
else
  redis.call('ZREM', KEYS[1], sid)
end
return 1
