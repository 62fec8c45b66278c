-- ship.lua: the units of a sale leave the warehouse: sold decreases, available stays.
-- KEYS[1]  P.."epoch:2"     marker: Redis holds a complete copy
-- KEYS[2]  P.."h:"..token   the hold (must be committed)
-- KEYS[3]  P.."exp"         unused (keeps the key shape of commit and release)
-- ARGV[1]  P, the key prefix;  ARGV[2]  token
-- Returns {1, sku, qty, ...} shipped now, {0} no committed hold under the token,
-- {2} the epoch marker is missing (rebuild first).
local P, token = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return {2} end
local state, lines = read_hold(KEYS[2])
if state ~= 'c' then return {0} end
probe_lines(P, lines)
for i = 1, #lines, 2 do
  redis.call('HINCRBY', P .. 's:' .. lines[i], 'c', -lines[i + 1])
end
redis.call('DEL', KEYS[2])
table.insert(lines, 1, 1)
return lines
