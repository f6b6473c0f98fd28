-- Removes the consumers of one ingest partition's group that hold nothing and have been idle a long time:
-- broker processes that stopped (each process reads as a consumer of its own name). A live process
-- removed this way loses nothing (it held no entry) and is a consumer again at its next append.
-- KEYS[1] partition stream ({in:<k>} slot)
-- ARGV[1] consumer group, ARGV[2] least idle time (ms) of a consumer removed, ARGV[3] a consumer kept (the caller)
-- Returns the number of consumers removed.
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return 0 end
local removed = 0
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f.name ~= ARGV[3] and tonumber(f.pending) == 0 and tonumber(f.idle) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f.name)
    removed = removed + 1
  end
end
return removed
