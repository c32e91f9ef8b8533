-- expand: add a loop's item nodes (specs and virtual outputs) and raise the node total, only
-- while the expanding attempt holds the loop (a stale attempt would count them twice); then
-- lease 0 says no attempt holds the loop while its items run, so the collecting run need not
-- wait and the reconciler sees no lapsed lease. Returns 1 when added, 0 when fenced off.
local meta_key, plan_key, outputs_key, nodes_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local loop_key = ARGV[1]
local token = ARGV[2]          -- the attempt that expands
local added = ARGV[3]          -- number of new nodes
local specs = ARGV[4]          -- JSON object: node key -> planned node (JSON text), with the loop
local outputs = ARGV[5]        -- JSON object: item node key -> virtual output (JSON text)

local k = loop_key .. ':'
local st = redis.call('HMGET', nodes_key, k .. 'status', k .. 'attempts')
if st[1] ~= 'running' or st[2] ~= token then return 0 end
hset_object(plan_key, cjson.decode(specs))
local items = cjson.decode(outputs)
if next(items) ~= nil then hset_object(outputs_key, items) end
redis.call('HINCRBY', meta_key, 'total', added)
redis.call('HSET', nodes_key, k .. 'lease_ms', 0)
same_ttl(meta_key, outputs_key)
return 1
