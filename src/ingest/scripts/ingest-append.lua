-- Makes one ingest request durable in an ingest partition ({in:<k>} slot) and hands it to the
-- accepting process at once: XADD, then XREADGROUP puts it in that consumer's pending list, where
-- another process finds it with XAUTOCLAIM if the acceptor dies before finishing its fan-out.
-- KEYS[1] partition stream
-- ARGV[1] consumer group, ARGV[2] consumer (the process), ARGV[3] payload (JSON)
-- Returns {entry id, {id, fields}...}: the new entry's id and every other entry now handed to the consumer
-- (normally none; the caller has the new one's payload, which is not sent back).
local id = redis.call('XADD', KEYS[1], '*', 'p', ARGV[3])
local ok, got = pcall(redis.call, 'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 100, 'STREAMS', KEYS[1], '>')
if not ok then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')
  got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 100, 'STREAMS', KEYS[1], '>')
end
local out = { id }
if got and got[1] then
  for _, e in ipairs(got[1][2]) do
    if e[1] ~= id then table.insert(out, e) end
  end
end
return out
