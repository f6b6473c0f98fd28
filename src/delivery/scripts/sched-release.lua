-- Gives streams' leases back ({sched:<k>} slot); any number of streams in one call.
-- KEYS[1] ready zset, KEYS[2] lease hash, KEYS[3] dirty set
-- ARGV per stream four values: sid, owner, mode, due ms. Modes: 'idle' (nothing deliverable seen),
-- 'backoff' (due again at the due ms), 'drop' (no longer a push stream).
-- Returns per stream, in order: 0 not the holder, 1 released, 2 (idle) SETs came meanwhile: keep draining.
local out = {}
for i = 1, #ARGV, 4 do
  local sid, owner, mode, due = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local result = 1
  if redis.call('HGET', KEYS[2], sid) ~= owner then
    result = 0
  elseif mode == 'idle' and redis.call('SREM', KEYS[3], sid) == 1 then
    result = 2
  else
    redis.call('HDEL', KEYS[2], sid)
    redis.call('SREM', KEYS[3], sid)
    if mode == 'backoff' then
      redis.call('ZADD', KEYS[1], due, sid)
    else
      redis.call('ZREM', KEYS[1], sid)
    end
  end
  out[#out + 1] = result
end
return out
