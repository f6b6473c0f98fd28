-- Claims due streams of one scheduling shard under a lease ({sched:<k>} slot). A held stream's score is
-- its lease expiry, so a crashed holder's streams fall due on their own.
-- KEYS[1] ready zset, KEYS[2] lease hash, KEYS[3] dirty set
-- ARGV[1] now (ms), ARGV[2] lease ms, ARGV[3] owner, ARGV[4] most streams to claim
-- Returns {next due (ms) or -1, sid...}.
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local lease_until = now + tonumber(ARGV[2])
for _, sid in ipairs(due) do
  redis.call('ZADD', KEYS[1], lease_until, sid)
  redis.call('HSET', KEYS[2], sid, ARGV[3])
  redis.call('SREM', KEYS[3], sid)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local out = { nxt[2] or '-1' }
for _, sid in ipairs(due) do table.insert(out, sid) end
return out
