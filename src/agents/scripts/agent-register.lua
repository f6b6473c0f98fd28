-- Registers (or re-registers) one agent, checking every rule of agents/registration.ts in one step, so
-- concurrent registrations from several processes cannot race past the checks ({agents} slot: the keys
-- it reads while walking the graph are built from ARGV[7]/ARGV[8] and live in the same slot).
-- KEYS[1] the agent's record hash, KEYS[2] expiry zset, KEYS[3] the delegator node's edge set,
-- KEYS[4] the token-jti set of ARGV[9] (a key of the slot when there is none)
-- ARGV[1] agent id, ARGV[2] delegator node id, ARGV[3] registration JSON, ARGV[4] expiry (ms),
-- ARGV[5] now (ms), ARGV[6] most agents in a chain, ARGV[7] record key prefix, ARGV[8] edge key prefix,
-- ARGV[9] '1' when registered with a token_jti, ARGV[10] '1' when the delegator was named by agent id,
-- ARGV[11] most nodes inspected below the agent
-- Returns {'created', dagent, replaced (1|0), old record fields} or {'exists', record fields}, or a
-- refusal: {'conflict'|'cycle'|'unknown_delegator'|'delegator_not_live'|'too_deep'|'too_deep_below'|
-- 'subtree_too_large'|'relink_live', detail...} (agents/registration-errors.ts words them).
local id, parent = ARGV[1], ARGV[2]
local now, maxDepth = tonumber(ARGV[5]), tonumber(ARGV[6])
local RP, DP = ARGV[7], ARGV[8]
local function live(status, exp) return status == 'active' and tonumber(exp) > now end
local cur = redis.call('HMGET', KEYS[1], 'status', 'exp', 'parent')
if cur[1] and live(cur[1], cur[2]) then
  if cur[3] == parent then return {'exists', redis.call('HGETALL', KEYS[1])} end
  return {'conflict', cur[3]}
end
local depth, node, chain, dagent = 1, parent, {}, ''
while true do
  if node == id then table.insert(chain, node); return {'cycle', chain} end
  local r = redis.call('HMGET', RP .. node, 'status', 'exp', 'parent')
  if not r[1] then
    if depth == 1 and ARGV[10] == '1' then return {'unknown_delegator', node} end
    break
  end
  if depth == 1 then
    if not live(r[1], r[2]) then return {'delegator_not_live', r[1]} end
    dagent = node
  end
  table.insert(chain, node)
  depth = depth + 1
  if depth > maxDepth then return {'too_deep', tostring(depth)} end
  node = r[3]
end
local height, anyLive, count, visited, frontier = 0, false, 0, {}, {id}
visited[id] = true
while #frontier > 0 do
  local nextf = {}
  for _, n in ipairs(frontier) do
    for _, child in ipairs(redis.call('SMEMBERS', DP .. n)) do
      if not visited[child] then
        visited[child] = true
        local r = redis.call('HMGET', RP .. child, 'status', 'exp', 'parent')
        if r[1] and r[3] == n then
          count = count + 1
          if count > tonumber(ARGV[11]) then return {'subtree_too_large', tostring(count)} end
          if live(r[1], r[2]) then anyLive = true end
          table.insert(nextf, child)
        end
      end
    end
  end
  if #nextf > 0 then height = height + 1 end
  if depth + height > maxDepth then return {'too_deep_below', tostring(depth + height), tostring(height)} end
  frontier = nextf
end
if cur[1] and cur[3] ~= parent and anyLive then return {'relink_live', cur[3]} end
local old = {}
if cur[1] then
  old = redis.call('HGETALL', KEYS[1])
  if cur[3] ~= parent then redis.call('SREM', DP .. cur[3], id) end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'record', ARGV[3], 'status', 'active', 'exp', ARGV[4], 'parent', parent, 'dagent', dagent)
redis.call('SADD', KEYS[3], id)
redis.call('ZADD', KEYS[2], ARGV[4], id)
if ARGV[9] == '1' then redis.call('SADD', KEYS[4], id) end
local replaced = 0
if cur[1] == 'active' then replaced = 1 end
return {'created', dagent, replaced, old}
