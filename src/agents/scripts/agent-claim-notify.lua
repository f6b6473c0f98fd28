-- Claims retirements whose notification is overdue (the notifier crashed or failed): due again later.
-- KEYS[1] notification zset (agent id -> due ms)
-- ARGV[1] now (ms), ARGV[2] most to claim, ARGV[3] when they are due again (ms)
-- Returns the agent ids claimed.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
