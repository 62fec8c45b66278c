-- sweep.lua: reclaim the oldest expired holds, at most ARGV[2] of them.
-- KEYS[1]  P.."epoch:2"     marker: Redis holds a complete copy
-- KEYS[2]  P.."exp"         expiry index of held tokens
-- ARGV[1]  P, the key prefix;  ARGV[2]  the most holds to reclaim in this call
-- Returns the number of holds reclaimed (-1 when the epoch marker is missing).
-- Cost grows with the expired holds found, never with all holds.
local P, limit = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms(), 'LIMIT', 0, limit)
local dropped = {}
for k, t in ipairs(expired) do
  local state, lines = read_hold(P .. 'h:' .. t)
  probe_lines(P, lines)
  dropped[k] = {state, lines}
end
for k, t in ipairs(expired) do
  if dropped[k][1] == 'h' then
    drop_hold(P, t, 'h', dropped[k][2])
  else
    redis.call('ZREM', KEYS[2], t)
  end
end
return #expired
