-- release_lock: delete a lock (a string set with SET NX PX) only if it still holds the
-- token of the caller: a holder whose lock expired and was taken by another never frees it.
-- Returns 1 when released, 0 when the lock was not (or no longer) the caller's.
local lock_key = KEYS[1]
local token = ARGV[1]

if redis.call('GET', lock_key) == token then return redis.call('DEL', lock_key) end
return 0
