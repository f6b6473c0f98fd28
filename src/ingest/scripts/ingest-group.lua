-- Creates an ingest partition and its consumer group if missing (a script, so Redis Cluster routes it by
-- its key; XGROUP itself names the key only after a subcommand).
-- KEYS[1] partition stream
-- ARGV[1] consumer group
-- Returns 1 when created, 0 when it existed.
local ok = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(ok) == 'table' and ok.err then return 0 end
return 1
