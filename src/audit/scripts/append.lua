-- Appends one batch of audit records to the chain, only if the chain head is still the one the records
-- were hashed onto (compare-and-set); otherwise returns the current head so the caller can re-chain.
--
-- KEYS[1] head        string "<seq>:<hash>" of the newest record
-- KEYS[2] batches     hash batch id -> records (JSON Lines)
-- KEYS[3] batch-meta  hash batch id -> batch summary JSON
-- KEYS[4] order       zset batch id -> first seq
-- ARGV[1] the head the records were chained onto ('' for an empty chain)
-- ARGV[2] the new head "<seq>:<hash>" (the batch's last record)
-- ARGV[3] batch id (= seq of its first record, also its score)
-- ARGV[4] the records, JSON Lines
-- ARGV[5] the summary JSON
-- ARGV[6] index TTL (seconds)
-- ARGV[7] n: how many index keys follow
-- ARGV[8 .. 7+n]   index keys (zsets, same slot) the batch is filed under
-- ARGV[8+n .. ]    index keys whose TTL is refreshed now (a subset; the caller refreshes each at most
--                  once per interval, not on every write)
-- Returns {1} when stored, {0, current head} when the head had moved.
local head = redis.call('GET', KEYS[1]) or ''
if head ~= ARGV[1] then return {0, head} end
local id = ARGV[3]
redis.call('HSET', KEYS[2], id, ARGV[4])
redis.call('HSET', KEYS[3], id, ARGV[5])
redis.call('ZADD', KEYS[4], id, id)
local n = tonumber(ARGV[7])
for i = 8, 7 + n do
  redis.call('ZADD', ARGV[i], id, id)
end
for i = 8 + n, #ARGV do
  redis.call('EXPIRE', ARGV[i], ARGV[6])
end
redis.call('SET', KEYS[1], ARGV[2])
return {1}
