-- Push streams have new SETs (one scheduling shard: {sched:<k>}); any number of streams in one call.
-- KEYS[1] ready zset (sid -> due ms, or lease expiry while held), KEYS[2] lease hash (sid -> holder),
-- KEYS[3] dirty set (held streams that got SETs since their holder last looked)
-- ARGV[1] now (ms), then per stream four values: sid, owner claiming it at once ('' = none), lease ms,
-- flags: 'e' to end a backoff early (control SETs, redrive), 'o' to only claim it: change nothing unless
-- the owner can hold it now (asked while the SETs are still being appended)
-- Returns per stream, in order: 'held' (its holder will see it), 'busy' (held, and only a claim was asked:
-- nothing marked), 'waiting' (backing off), 'claimed' (the owner holds it now), 'due'.
local now = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 4 do
  local sid, owner, lease, flags = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local result
  if redis.call('HEXISTS', KEYS[2], sid) == 1 then
    if string.find(flags, 'o', 1, true) then
      result = 'busy'
    else
      redis.call('SADD', KEYS[3], sid)
      result = 'held'
    end
  else
    local due = redis.call('ZSCORE', KEYS[1], sid)
    if due and tonumber(due) > now and not string.find(flags, 'e', 1, true) then
      result = 'waiting'
    elseif owner ~= '' then
      redis.call('HSET', KEYS[2], sid, owner)
      redis.call('ZADD', KEYS[1], now + lease, sid)
      result = 'claimed'
    else
      redis.call('ZADD', KEYS[1], now, sid)
      result = 'due'
    end
  end
  out[#out + 1] = result
end
return out
