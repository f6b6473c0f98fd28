-- Renews an upstream's poll lease if the caller still holds it.
-- KEYS[1] lease key (ssf:{upstreams}:lease:<id>)
-- ARGV[1] holder id, ARGV[2] lease duration (ms)
-- Returns 1 when renewed, 0 when the lease is gone or held by another process.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
