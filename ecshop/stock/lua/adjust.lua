-- adjust.lua: follow a change of on_hand in the database: available moves by delta.
-- KEYS[1]  P.."epoch:2"     marker: Redis holds a complete copy
-- KEYS[2]  P.."s:"..sku     levels of the SKU
-- ARGV[1]  delta (integer, may be negative)
-- ARGV[2]  "1" to create the SKU with available = delta when it is missing (new SKU),
--          "0" to refuse an unknown SKU
-- Returns {0, available} applied, {1, available} refused: available would go below 0,
--         {2} the epoch marker is missing (rebuild first), {3} unknown SKU.
local delta, create = tonumber(ARGV[1]), ARGV[2] == '1'
if redis.call('EXISTS', KEYS[1]) == 0 then return {2} end
local a = redis.call('HGET', KEYS[2], 'a')
if not a then
  if not create then return {3} end
  if delta < 0 then return {1, 0} end
  redis.call('HSET', KEYS[2], 'a', delta, 'h', 0, 'c', 0)
  return {0, delta}
end
a = tonumber(a)
if a + delta < 0 then return {1, a} end
return {0, redis.call('HINCRBY', KEYS[2], 'a', delta)}
