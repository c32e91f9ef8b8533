-- progress: emit node.progress while the execution exists and is live.
local meta_key, stream_key, log_key = KEYS[1], KEYS[2], KEYS[3]
local channel = ARGV[1]
local execution_id = ARGV[2]
local key = ARGV[3]
local now = ARGV[4]            -- ms
local event_id = ARGV[5]
local fraction = tonumber(ARGV[6])  -- 0..1
local message = ARGV[7]

if not is_live(redis.call('HGET', meta_key, 'status')) then return 0 end
emit(stream_of(meta_key, stream_key, log_key, channel, execution_id),
     {id=event_id, type='node.progress', node_id=key, ts=tonumber(now) / 1000,
      data={progress=fraction, message=message}})
return 1
