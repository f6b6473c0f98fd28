-- Reads the head of one stream's lanes, with the queued normal SETs about each subject of the priority
-- SETs read (all keys in the {o:<sid>} slot). Bounded work: at most ARGV[1] entries per lane.
-- KEYS[1] control lane, KEYS[2] priority lane, KEYS[3] normal lane, KEYS[4] pending hash
-- (subjectKey -> queued normal SETs)
-- ARGV[1] entries read per lane, ARGV[2] the lanes to read, as letters ('cpn', 'c', ...)
-- Returns {control entries, priority entries, normal entries, {subjectKey, count, ...}}, entries as
-- XRANGE answers them; subjects with no queued normal SET are left out of the counts.
local count = tonumber(ARGV[1])
local function read(letter, key)
  if string.find(ARGV[2], letter, 1, true) then return redis.call('XRANGE', key, '-', '+', 'COUNT', count) end
  return {}
end
local c, p, n = read('c', KEYS[1]), read('p', KEYS[2]), read('n', KEYS[3])
local counts = {}
if #p > 0 then
  local seen, sks = {}, {}
  for _, e in ipairs(p) do
    local f = e[2]
    for k = 1, #f, 2 do
      if f[k] == 's' then
        if not seen[f[k + 1]] then
          seen[f[k + 1]] = true
          table.insert(sks, f[k + 1])
        end
        break
      end
    end
  end
  local found = redis.call('HMGET', KEYS[4], unpack(sks))
  for i, sk in ipairs(sks) do
    if found[i] then
      table.insert(counts, sk)
      table.insert(counts, found[i])
    end
  end
end
return { c, p, n, counts }
