-- Extends the leases a process still holds ({sched:<k>} slot).
-- KEYS[1] ready zset, KEYS[2] lease hash
-- ARGV[1] lease expiry (ms), ARGV[2] owner, ARGV[3..] sids
-- Returns the sids still held by the owner.
local held = {}
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[2] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
    table.insert(held, ARGV[i])
  end
end
return held
