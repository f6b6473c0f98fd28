-- A push stream has new SETs (one scheduling shard: {sched:<k>}).
-- KEYS[1] ready zset (sid -> due ms, or lease expiry while held), KEYS[2] lease hash (sid -> holder),
-- KEYS[3] dirty set (held streams that got SETs since their holder last looked)
-- ARGV[1] sid, ARGV[2] now (ms), ARGV[3] lease ms, ARGV[4] owner claiming it at once ('' = none),
-- ARGV[5] '1' to end a backoff early (control SETs, redrive), ARGV[6] '1' to only claim it: change nothing
-- unless ARGV[4] can hold it now (asked while the SETs are still being appended)
-- Returns 'held' (its holder will see it), 'busy' (held, and only a claim was asked: nothing marked),
-- 'waiting' (backing off), 'claimed' (ARGV[4] holds it now), 'due'.
local sid, now = ARGV[1], tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[2], sid) == 1 then
  if ARGV[6] == '1' then return 'busy' end
  redis.call('SADD', KEYS[3], sid)
  return 'held'
end
local due = redis.call('ZSCORE', KEYS[1], sid)
if due and tonumber(due) > now and ARGV[5] ~= '1' then return 'waiting' end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], sid, ARGV[4])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), sid)
  return 'claimed'
end
redis.call('ZADD', KEYS[1], now, sid)
return 'due'
