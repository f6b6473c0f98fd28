-- Releases an upstream's poll lease if the caller holds it, so another process can take over at once.
-- KEYS[1] lease key (ssf:{upstreams}:lease:<id>)
-- ARGV[1] holder id
-- Returns 1 when released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
