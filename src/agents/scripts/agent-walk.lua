-- Breadth-first walk down the delegation edges from the seed nodes, in one call ({agents} slot; every
-- key read is built from ARGV[2]/ARGV[3]).
-- KEYS[1] the agents' anchor key (routes the script to the slot)
-- ARGV[1] most agents deep, ARGV[2] record key prefix, ARGV[3] edge key prefix, ARGV[4] the principal's
-- node id, then 3 per seed: node id, depth, '1' to include the seed's own record
-- Returns {principal has a record (1|0), row...}: one row per node reached whose record names the node it
-- was reached from as its parent: {id, parent ('' for a seed included itself), depth, record, status, exp,
-- parent, dagent, retired_at, retired_reason}; a missing record is a row {id, parent, '', ''} (cleanup).
local maxDepth, RP, DP = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out = { redis.call('EXISTS', RP .. ARGV[4]) }
local visited, frontier = {}, {}
local function row(id, parent, depth, r)
  table.insert(out, { id, parent, tostring(depth), r[1] or '', r[2] or '', r[3] or '', r[4] or '', r[5] or '', r[6] or '', r[7] or '' })
end
local i = 5
while i <= #ARGV do
  local id, depth, self = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if not visited[id] then
    visited[id] = true
    if self == '1' then
      local r = redis.call('HMGET', RP .. id, 'record', 'status', 'exp', 'parent', 'dagent', 'retired_at', 'retired_reason')
      if r[1] then
        row(id, '', depth, r)
        table.insert(frontier, { id, depth })
      end
    else
      table.insert(frontier, { id, depth })
    end
  end
  i = i + 3
end
while #frontier > 0 do
  local nextf = {}
  for _, f in ipairs(frontier) do
    if f[2] < maxDepth then
      for _, child in ipairs(redis.call('SMEMBERS', DP .. f[1])) do
        if not visited[child] then
          local r = redis.call('HMGET', RP .. child, 'record', 'status', 'exp', 'parent', 'dagent', 'retired_at', 'retired_reason')
          if not r[1] then
            table.insert(out, { child, f[1], '', '' })
          elseif r[4] == f[1] then
            visited[child] = true
            row(child, f[1], f[2] + 1, r)
            table.insert(nextf, { child, f[2] + 1 })
          end
        end
      end
    end
  end
  frontier = nextf
end
return out
