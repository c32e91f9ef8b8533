-- load: a node's spec, its execution's state and its upstream outputs; marks the node running
-- (a new attempt, emitting node.started, and execution.started for the first) unless it is
-- finished, held by another attempt whose lease has not expired (busy), delivered for the
-- other phase of a loop (a stale duplicate), or the execution is not live. A debugging
-- execution (meta `breakpoints` or `step`) instead pauses before a node its breakpoints match,
-- or, while stepping, before any node the step did not choose (that node then waits, as
-- busy, while a node of the step still runs); see conductor/model/breakpoints.py.
-- Returns false for an unknown node, else {spec, status, node status, attempt, total,
-- deadline_ms, inputs, variables, {source, output, finished_ms, ...}, busy, tries, wrong phase}.
local meta_key, plan_key, nodes_key, outputs_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local stream_key, log_key, live_key = KEYS[5], KEYS[6], KEYS[7]
local channel = ARGV[1]
local execution_id = ARGV[2]
local key = ARGV[3]            -- the node key
local now = ARGV[4]            -- the worker's clock (ms): timings and event ts
local worker = ARGV[5]
local node_event_id = ARGV[6]
local execution_event_id = ARGV[7]
local lease_ms = tonumber(ARGV[8])
local phase = ARGV[9]          -- 'collect' for a loop's collecting run, else ''

-- 'hold' (pause before node `key`), 'wait' (a node of the current step still runs) or nil.
local function debug_stop(meta_key, nodes_key, key, id, breakpoints, step, clock)
  if step then
    local chosen = cjson.decode(step)
    for _, k in ipairs(chosen) do if k == key then return nil end end
    for _, k in ipairs(chosen) do
      local st = redis.call('HMGET', nodes_key, k .. ':status', k .. ':lease_ms')
      if st[1] == false or st[1] == 'pending'
         or (st[1] == 'running' and tonumber(st[2] or '0') > clock) then
        return 'wait'
      end
    end
    return 'hold'
  end
  if redis.call('HEXISTS', meta_key, 'passed:' .. key) == 1 then return nil end
  local template = string.gsub(key, '#%d+', '')
  for _, name in ipairs(cjson.decode(breakpoints)) do
    if name == key or name == template or name == id then return 'hold' end
  end
  return nil
end

local spec = redis.call('HGET', plan_key, key)
if not spec then return false end
local to = stream_of(meta_key, stream_key, log_key, channel, execution_id)
local decoded = cjson.decode(spec)
local meta = redis.call('HMGET', meta_key, 'status', 'total', 'deadline_ms', 'inputs', 'variables',
                        'breakpoints', 'step')
local status = meta[1]
local k = key .. ':'
local node = redis.call('HMGET', nodes_key, k .. 'status', k .. 'attempts', k .. 'lease_ms',
                        k .. 'base')
local node_status = node[1] or 'pending'
local attempt = tonumber(node[2] or '0')
local live = status == 'queued' or status == 'running'
local busy = 0
local clock = clock_ms()       -- one TIME per script
local wrong_phase = (decoded['expanded'] == true) ~= (phase == 'collect')
local leased = node_status == 'running' and tonumber(node[3] or '0') > clock
local stop = nil
if (meta[6] or meta[7]) and live and not wrong_phase and not finished(node_status)
   and not leased then
  stop = debug_stop(meta_key, nodes_key, key, decoded['id'], meta[6], meta[7], clock)
end
if stop == 'hold' then
  status = 'paused'
  live = false
  redis.call('HSET', meta_key, 'status', status, 'passed:' .. key, 1)
  redis.call('ZREM', live_key, execution_id)
  emit(to, {id=execution_event_id, type='execution.paused', node_id=cjson.null,
            ts=tonumber(now) / 1000, data={status=status, breakpoint=key, step=meta[7] ~= false}})
end
if stop == 'wait' then
  busy = 1
elseif wrong_phase or not live or finished(node_status) then
  busy = 0
elseif leased then
  busy = 1
else
  local ts = tonumber(now) / 1000
  attempt = redis.call('HINCRBY', nodes_key, k .. 'attempts', 1)
  redis.call('HSET', nodes_key, k .. 'status', 'running', k .. 'started_ms', now,
             k .. 'worker', worker, k .. 'lease_ms', clock + lease_ms)
  redis.call('ZADD', live_key, clock, execution_id)
  keep_ttl(meta_key, nodes_key)
  if status == 'queued' then
    redis.call('HSET', meta_key, 'status', 'running', 'started_ms', now)
    emit(to, {id=execution_event_id, type='execution.started', node_id=cjson.null, ts=ts,
              data={}})
  end
  emit(to, {id=node_event_id, type='node.started', node_id=key, ts=ts,
            data={attempt=attempt, worker=worker, type=decoded['type']}})
end
local sources = {}
for _, wire in ipairs(decoded['wires']) do table.insert(sources, wire['source']) end
local upstream = {}
if #sources > 0 then upstream = redis.call('HMGET', outputs_key, unpack(sources)) end
local found = {}
for i, source in ipairs(sources) do
  if upstream[i] then
    local ended = redis.call('HGET', nodes_key, source .. ':finished_ms') or '0'
    table.insert(found, source); table.insert(found, upstream[i]); table.insert(found, ended)
  end
end
local tries = attempt - tonumber(node[4] or '0')
return {spec, status, node_status, attempt, meta[2], meta[3], meta[4], meta[5], found, busy,
        tries, wrong_phase and 1 or 0}
