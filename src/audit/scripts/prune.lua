-- Retention: removes audit records older than a cutoff, oldest first in chain order, stopping at the
-- first newer record (the chain stays contiguous), and moves the anchor to the last removed record.
-- Anything it cannot read (a damaged batch) also stops it, and is left for verification to report.
-- Whole batches go at once (their summary says every record is older); the batch holding the first
-- newer record loses only its older prefix, and the call ends there. Work per call is bounded: whole
-- batches until ARGV[2] is spent, then at most one batch's records read; the caller repeats.
--
-- KEYS[1] batches     hash batch id -> records (JSON Lines)
-- KEYS[2] batch-meta  hash batch id -> {n, last, last_hash, max_at, ix}
-- KEYS[3] order       zset batch id -> first seq
-- KEYS[4] anchor      string "<seq>:<hash>" of the last removed record
-- ARGV[1] cutoff (ms since the epoch): records with `at` below it are removed
-- ARGV[2] work budget for this call (a removed batch costs 1 + its index keys)
-- Returns {records removed, 1 if the budget ran out before the cutoff was reached else 0}.
local cutoff = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local removed = 0

local function drop(id, meta)
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  for _, ix in ipairs(meta.ix) do
    redis.call('ZREM', ix, id)
  end
end

while budget > 0 do
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)
  local id = first[1]
  if not id then return {removed, 0} end
  local raw = redis.call('HGET', KEYS[2], id)
  if not raw then return {removed, 0} end
  local okMeta, meta = pcall(cjson.decode, raw)
  if not okMeta or type(meta) ~= 'table' or type(meta.ix) ~= 'table' or not tonumber(meta.max_at) then return {removed, 0} end
  budget = budget - 1 - #meta.ix
  if tonumber(meta.max_at) < cutoff then
    drop(id, meta)
    redis.call('SET', KEYS[4], string.format('%d', meta.last) .. ':' .. meta.last_hash)
    removed = removed + meta.n
  else
    local text = redis.call('HGET', KEYS[1], id)
    if not text then return {removed, 0} end
    local pos, k, last = 1, 0, nil
    while true do
      local stop = string.find(text, '\n', pos, true)
      if not stop then break end
      local okRec, rec = pcall(cjson.decode, string.sub(text, pos, stop - 1))
      if not okRec or type(rec) ~= 'table' or not tonumber(rec.at) or tonumber(rec.at) >= cutoff then break end
      last = rec
      k = k + 1
      pos = stop + 1
    end
    if k > 0 then
      redis.call('SET', KEYS[4], string.format('%d', last.seq) .. ':' .. last.hash)
      removed = removed + k
      if pos > #text then
        drop(id, meta)
      else
        redis.call('HSET', KEYS[1], id, string.sub(text, pos))
        meta.n = meta.n - k
        redis.call('HSET', KEYS[2], id, cjson.encode(meta))
      end
    end
    return {removed, 0}
  end
end
return {removed, 1}
