-- lib.lua: helpers prepended to every stock script (not a script of its own).
-- Key layout, all under one hash tag so every script runs on one Cluster slot
-- (P is the prefix, for example "ecshop:{stock}:"):
--   P.."epoch"      string   present while Redis holds a complete copy of the stock:
--                            "<rebuild id>@<run_id of the server it was written on>"
--   P.."s:"..sku    hash     a = available, h = held, c = sold (committed, not shipped)
--   P.."x:"..sku    zset     held tokens with a unit of this SKU, scored by expiry (ms)
--   P.."h:"..token  hash     "" = state ("h" held | "c" committed), sku = qty
--   P.."exp"        zset     every held token, scored by expiry (ms)
-- NOTE: the empty field name marks the state because a SKU is never empty.

-- The expiry score of a hold that lasts until released: ecshop.stock._types.NEVER in ms.
local NEVER_MS = 4000000000000000

-- This server's run_id: new at every start, and a replica's is its own, so a copy
-- marked with another one came here by replication or from a snapshot.
local function server_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Read a hold: its state (nil when absent) and its lines as {sku, qty, sku, qty, ...}.
local function read_hold(hkey)
  local flat = redis.call('HGETALL', hkey)
  local state = nil
  local lines = {}
  for i = 1, #flat, 2 do
    if flat[i] == '' then
      state = flat[i + 1]
    else
      lines[#lines + 1] = flat[i]
      lines[#lines + 1] = tonumber(flat[i + 1])
    end
  end
  return state, lines
end

-- Touch (read) every key that dropping or moving this hold writes, so a key of the
-- wrong type fails the script here, before its first write.
local function probe_lines(P, lines)
  for i = 1, #lines, 2 do
    redis.call('HGET', P .. 's:' .. lines[i], 'a')
    redis.call('ZSCORE', P .. 'x:' .. lines[i], '')
  end
end

-- Fail (before any write) unless the key is absent or of the given type.
local function probe_type(key, want)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= want then
    error('WRONGTYPE Operation against a key holding the wrong kind of value: ' .. key)
  end
end

-- Remove a hold. A held one gives its units back to available; a committed one
-- gives them back too (restock). Writes only.
local function drop_hold(P, token, state, lines)
  local field = 'h'
  if state == 'c' then field = 'c' end
  for i = 1, #lines, 2 do
    local skey = P .. 's:' .. lines[i]
    redis.call('HINCRBY', skey, 'a', lines[i + 1])
    redis.call('HINCRBY', skey, field, -lines[i + 1])
    if field == 'h' then
      redis.call('ZREM', P .. 'x:' .. lines[i], token)
    end
  end
  redis.call('DEL', P .. 'h:' .. token)
  redis.call('ZREM', P .. 'exp', token)
end
