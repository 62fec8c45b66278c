-- reserve.lua: hold the units of every line of a cart, all or nothing.
-- KEYS[1]            P.."epoch:2"      marker: Redis holds a complete copy
-- KEYS[2]            P.."h:"..token    the hold to create
-- KEYS[3]            P.."exp"          expiry index of held tokens
-- KEYS[3+i]          P.."s:"..sku_i    levels of line i (i = 1..n, SKUs sorted, unique)
-- ARGV[1]            P, the key prefix (reaches the holds and SKUs reclaimed here)
-- ARGV[2]            token
-- ARGV[3]            time to live of the hold in ms; 0 = until released (scored at
--                    NEVER_MS + now: no later reserve or sweep reclaims it, and the
--                    reconciler can still tell its age to find holds no order owns)
-- ARGV[3+2i-1], ARGV[3+2i]   sku_i, qty_i
-- Returns {0, reclaimed, 1} held,
--         {0, 0, 0} when the token already holds or has bought (idempotent: nothing new),
--         {1, reclaimed, sku, requested, available, ...} for every line short of stock
--         (nothing held),
--         {4, reclaimed} short of stock while more expired holds than one call reclaims
--         may be waiting (nothing held: sweep, then reserve again),
--         {2} the epoch marker is missing (rebuild first), {3, sku} unknown SKU;
--         reclaimed = the expired holds given back on the way (also when refused).
-- The earliest expired holds of any SKU (at most RECLAIM) are reclaimed first, so stock
-- left in abandoned carts comes back by itself. Every key is read before the first write.
-- PERF: a new 1-line hold costs 9 calls while nothing is due (EXISTS, HGET, ZRANGE,
-- TIME, then per line HGET and two HINCRBY, then HSET, ZADD); the range query runs only
-- when the earliest expiry has passed.
local RECLAIM = 64
local P, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = #KEYS - 3
if redis.call('EXISTS', KEYS[1]) == 0 then return {2} end

-- read phase: the token's own hold, the earliest expiry, the levels of every SKU
local own_state = redis.call('HGET', KEYS[2], '')
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
local now = now_ms()
if own_state == 'c' then return {0, 0, 0} end
if own_state == 'h' then
  local own_exp = redis.call('ZSCORE', KEYS[3], token)
  if own_exp and tonumber(own_exp) > now then return {0, 0, 0} end
end

local avail = {}
for i = 1, n do
  local a = redis.call('HGET', KEYS[3 + i], 'a')
  if not a then return {3, ARGV[2 + 2 * i]} end
  avail[ARGV[2 + 2 * i]] = tonumber(a)
end

local reclaim, seen = {}, {}
if own_state then
  reclaim[1] = token
  seen[token] = true
end
local full = false
if first[2] and tonumber(first[2]) <= now then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, RECLAIM)
  full = #expired == RECLAIM
  for _, t in ipairs(expired) do
    if not seen[t] then
      seen[t] = true
      reclaim[#reclaim + 1] = t
    end
  end
end
local dropped = {}
for k, t in ipairs(reclaim) do
  local state, lines = read_hold(P .. 'h:' .. t)
  probe_lines(P, lines)
  dropped[k] = {state, lines}
  if state == 'h' then
    for j = 1, #lines, 2 do
      if avail[lines[j]] then avail[lines[j]] = avail[lines[j]] + lines[j + 1] end
    end
  end
end

local short = {}
for i = 1, n do
  local sku, qty = ARGV[2 + 2 * i], tonumber(ARGV[3 + 2 * i])
  if qty > avail[sku] then
    short[#short + 1] = sku
    short[#short + 1] = qty
    short[#short + 1] = avail[sku]
  end
end

-- write phase
local reclaimed = 0
for k, t in ipairs(reclaim) do
  if dropped[k][1] == 'h' then
    drop_hold(P, t, 'h', dropped[k][2])
    reclaimed = reclaimed + 1
  else -- a stale index entry: the hold was committed or removed meanwhile
    redis.call('ZREM', KEYS[3], t)
  end
end
if #short > 0 then
  if full then return {4, reclaimed} end
  table.insert(short, 1, reclaimed)
  table.insert(short, 1, 1)
  return short
end
local expires = NEVER_MS + now
if ttl > 0 then expires = now + ttl end
local fields = {'', 'h'}
for i = 1, n do
  local sku, qty = ARGV[2 + 2 * i], tonumber(ARGV[3 + 2 * i])
  redis.call('HINCRBY', KEYS[3 + i], 'a', -qty)
  redis.call('HINCRBY', KEYS[3 + i], 'h', qty)
  fields[#fields + 1] = sku
  fields[#fields + 1] = qty
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[3], expires, token)
return {0, reclaimed, 1}
