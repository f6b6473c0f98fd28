-- Reads the head of one stream's lanes, with the queued normal SETs about each subject of the priority
-- SETs read (all keys in the {o:<sid>} slot). Bounded work: at most ARGV[1] entries per lane.
-- KEYS[1] control lane, KEYS[2] priority lane, KEYS[3] normal lane, KEYS[4] pending hash
-- (subjectKey -> queued normal SETs), KEYS[5] attempts hash, KEYS[6] failing-since marker
-- ARGV[1] entries read per lane, ARGV[2] the lanes to read, as letters ('cpn', 'c', ...), ARGV[3..5]
-- per lane (control, priority, normal) the entry id after which to read ('-': from the start), so a
-- drain reads only what it has not read before
-- Returns {control entries, priority entries, normal entries, {subjectKey, count, ...}, failing (1|0)},
-- entries as XRANGE answers them; subjects with no queued normal SET are left out of the counts;
-- failing: some SET of the stream failed and awaits its retry, or its failures have not yet ended.
local count = tonumber(ARGV[1])
local function read(letter, key, after)
  if not string.find(ARGV[2], letter, 1, true) then return {} end
  local start = '-'
  if after ~= '-' then start = '(' .. after end
  return redis.call('XRANGE', key, start, '+', 'COUNT', count)
end
local c, p, n = read('c', KEYS[1], ARGV[3]), read('p', KEYS[2], ARGV[4]), read('n', KEYS[3], ARGV[5])
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
local failing = 0
if redis.call('EXISTS', KEYS[5], KEYS[6]) > 0 then failing = 1 end
return { c, p, n, counts, failing }
