-- complete: store a node's output and final status once, add it to the finished set and emit
-- its outcome event (node.succeeded|skipped|failed|cached). A duplicate delivery, a stale
-- attempt fenced off by a newer one, or an execution over stores nothing: the first outcome
-- stands.
-- Returns 0 (nothing stored), 1 (recorded) or 2 (recorded, and every node is now finished).
local meta_key, nodes_key, outputs_key, done_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local stream_key, log_key, live_key = KEYS[5], KEYS[6], KEYS[7]
local channel = ARGV[1]
local execution_id = ARGV[2]
local key = ARGV[3]
local output = ARGV[4]         -- JSON, or a blob reference
local status = ARGV[5]         -- succeeded | skipped | failed (settled)
local now = ARGV[6]            -- ms
local event_id = ARGV[7]
local event_type = ARGV[8]
local error = ARGV[9]          -- JSON, or '' (a settled failure's error)
local token = ARGV[10]         -- the attempt (fencing token), or '' for whichever
local reason = ARGV[11] or '' -- why a skipped node was skipped, or ''
local profile = ARGV[12] or ''  -- JSON (what the run used), or '' (or absent)

-- nothing either once the execution is over: no event follows the terminal one
local meta = redis.call('HMGET', meta_key, 'status', 'total')
if not is_live(meta[1]) then return 0 end
local k = key .. ':'
local st = redis.call('HMGET', nodes_key, k .. 'status', k .. 'attempts', k .. 'started_ms')
if not held_by(st, token) then return 0 end
redis.call('ZADD', live_key, clock_ms(), execution_id)
redis.call('HSET', outputs_key, key, output)
redis.call('HSET', nodes_key, k .. 'status', status, k .. 'finished_ms', now)
if error ~= '' then redis.call('HSET', nodes_key, k .. 'error', error) end
if profile ~= '' then redis.call('HSET', nodes_key, k .. 'profile', profile) end
redis.call('SADD', done_key, key)
local count = redis.call('SCARD', done_key)
-- only the first outcome (again after a reopen emptied the set) can find a key with no TTL:
-- until then no outcome wrote the outputs and done keys, and neither did a load the nodes one
if count == 1 then
  for _, other in ipairs({nodes_key, outputs_key, done_key}) do keep_ttl(meta_key, other) end
end
local started = tonumber(st[3] or now)
local data = {duration_ms = tonumber(now) - started}
if error ~= '' then data['error'] = decode(error); data['settled'] = true end
if reason ~= '' then data['reason'] = reason end
if profile ~= '' then data['profile'] = decode(profile) end
emit(stream_of(meta_key, stream_key, log_key, channel, execution_id),
     {id=event_id, type=event_type, node_id=key, ts=tonumber(now) / 1000, data=data})
-- the total now, not when the node loaded: a loop's expansion may have raised it since
if count >= tonumber(meta[2]) then return 2 end
return 1
