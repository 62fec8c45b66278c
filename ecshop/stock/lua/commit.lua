-- commit.lua: turn a live hold into a sale (sold, not yet shipped).
-- KEYS[1]  P.."epoch:2"     marker: Redis holds a complete copy
-- KEYS[2]  P.."h:"..token   the hold
-- KEYS[3]  P.."exp"         expiry index of held tokens
-- ARGV[1]  P, the key prefix;  ARGV[2]  token
-- Returns 1 committed (now or before), 0 the hold is gone (expired holds are reclaimed
-- here), 2 the epoch marker is missing (rebuild first).
local P, token = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return 2 end
local state, lines = read_hold(KEYS[2])
local exp = redis.call('ZSCORE', KEYS[3], token)
if state == 'c' then return 1 end
if state ~= 'h' then return 0 end
probe_lines(P, lines)
if not exp or tonumber(exp) <= now_ms() then
  drop_hold(P, token, 'h', lines)
  return 0
end
for i = 1, #lines, 2 do
  local skey = P .. 's:' .. lines[i]
  redis.call('HINCRBY', skey, 'h', -lines[i + 1])
  redis.call('HINCRBY', skey, 'c', lines[i + 1])
end
redis.call('HSET', KEYS[2], '', 'c')
redis.call('ZREM', KEYS[3], token)
return 1
